//! Who is calling over HTTP when the server is an OAuth 2.1 resource server: the verified
//! `Principal` (issuer, subject, scopes, Smartcar user ids) and the fixed scope names. Tokens are
//! checked in `oauth::verify` (the only code naming jsonwebtoken); the operator's table of
//! callers to users is `oauth::tenants`.

pub mod tenants;
pub mod verify;

pub use verify::{Refusal, Verifier};

/// The fixed scopes this server understands (docs/oauth.md): each tool names its own in
/// tools.yaml, so the words live with the catalogue.
pub use crate::catalogue::Scope;

fn bit(s: Scope) -> u8 {
    1 << (s as u8)
}

/// A set of scopes (a bit each): copying and testing one costs nothing on the call path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub const NONE: Scopes = Scopes(0);

    pub fn of(scopes: &[Scope]) -> Scopes {
        Scopes(scopes.iter().fold(0, |acc, s| acc | bit(*s)))
    }

    /// The known names of a space-separated `scope` claim; unknown names are ignored (an
    /// authorization server may grant `openid` and others beside ours).
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Scopes {
        Scopes(
            names
                .into_iter()
                .filter_map(Scope::parse)
                .fold(0, |acc, s| acc | bit(s)),
        )
    }

    pub fn has(self, s: Scope) -> bool {
        self.0 & bit(s) != 0
    }

    pub fn contains(self, other: Scopes) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn with(self, other: Scopes) -> Scopes {
        Scopes(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names, space-separated, as a `scope` parameter writes them.
    pub fn names(self) -> String {
        Scope::ALL
            .iter()
            .copied()
            .filter(|s| self.has(*s))
            .map(Scope::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A caller whose access token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `iss`, exactly.
    pub issuer: String,
    /// The token's `sub`.
    pub subject: String,
    pub scopes: Scopes,
    /// The Smartcar user ids this caller acts for: the user claim's and the tenants table's,
    /// sorted and without duplicates.
    pub users: Vec<String>,
}

impl Principal {
    /// Issuer and subject in one string: what sessions and sealed confirmations are bound to.
    /// A newline cannot occur in either (both came out of JSON strings checked here), so two
    /// callers never share a key.
    pub fn key(&self) -> String {
        format!("{}\n{}", self.issuer, self.subject)
    }

    /// Whether this caller may act for every user of the application.
    pub fn is_admin(&self) -> bool {
        self.scopes.has(Scope::AppAdmin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_known_names_only_and_print_in_a_fixed_order() {
        let s = Scopes::parse("openid vehicle:unlock vehicle:read bogus".split(' '));
        assert!(s.has(Scope::VehicleRead) && s.has(Scope::VehicleUnlock));
        assert!(!s.has(Scope::VehicleCommand) && !s.has(Scope::AppAdmin));
        assert_eq!(s.names(), "vehicle:read vehicle:unlock");
        assert!(s.contains(Scopes::of(&[Scope::VehicleRead])));
        assert!(!s.contains(Scopes::of(&[Scope::VehicleRead, Scope::AppAdmin])));
        assert!(Scopes::NONE.is_empty());
        for x in Scope::ALL {
            assert_eq!(Scope::parse(x.as_str()), Some(*x));
        }
    }
}
