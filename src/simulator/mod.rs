//! A local stand-in of Smartcar's API (placeholder; being written).
