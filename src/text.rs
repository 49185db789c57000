//! Input echoed back in a message or a log line, cut to a bound: a refusal names what it refused,
//! but a client that sends megabytes must not get megabytes of error (or of our stderr) back.

/// The most characters of a client's input any message or log line repeats.
pub const ECHO_CHARS: usize = 100;

/// `input` as a message repeats it: whole up to `ECHO_CHARS` characters, else its first
/// characters, an ellipsis and how long it was.
pub fn clip(input: &str) -> std::borrow::Cow<'_, str> {
    match input.char_indices().nth(ECHO_CHARS) {
        None => input.into(),
        Some((end, _)) => {
            let keep = input[..end]
                .char_indices()
                .nth(ECHO_CHARS - 1)
                .map_or(end, |(i, _)| i);
            format!("{}… ({} characters)", &input[..keep], input.chars().count()).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_whole_and_long_input_is_cut_on_a_character_boundary() {
        assert_eq!(clip("abc"), "abc");
        let exact = "x".repeat(ECHO_CHARS);
        assert_eq!(clip(&exact), exact);
        let long = "é".repeat(1_000_000);
        let c = clip(&long);
        assert!(c.starts_with(&"é".repeat(ECHO_CHARS - 1)));
        assert!(c.ends_with("… (1000000 characters)"), "{c}");
        assert!(c.chars().count() < ECHO_CHARS + 30);
    }
}
