//! Salesforce record Ids: the 15-character case-sensitive form, the 18-character form the API
//! returns, and the checksum suffix that turns one into the other.
//!
//! Salesforce accepts either length but always returns 18 characters; sfsync stores the 18-character
//! form (`sfid`), so every Id is parsed here at the edge and normalised.

use std::fmt;

/// Alphabet that the three suffix characters index into.
const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// A valid 18-character Salesforce Id.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SalesforceId([u8; 18]);

/// Why a string is not a Salesforce Id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("Salesforce Id {0:?} has {1} characters; an Id has 15 or 18")]
    Length(String, usize),
    #[error("Salesforce Id {0:?} contains {1:?}; Ids hold only ASCII letters and digits")]
    Character(String, char),
    #[error("Salesforce Id {0:?} has the suffix {1:?}, but its first 15 characters give {2:?}")]
    Checksum(String, String, String),
}

/// The 3-character suffix for a 15-character Id core.
///
/// Each 5-character group contributes one character: bit *i* is set when the group's *i*-th
/// character is an ASCII uppercase letter.
pub fn checksum_suffix(core: &[u8; 15]) -> [u8; 3] {
    let mut suffix = [0u8; 3];
    for (group, out) in core.chunks(5).zip(suffix.iter_mut()) {
        let bits = group
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_ascii_uppercase())
            .fold(0usize, |acc, (i, _)| acc | (1 << i));
        *out = SUFFIX_ALPHABET[bits];
    }
    suffix
}

impl SalesforceId {
    /// Parses a 15- or 18-character Id. An 18-character Id must carry the right suffix, unless
    /// only its case differs (the suffix tells the case of the core, but we never restore case:
    /// a mismatch is reported instead, since a case-mangled Id would point at another record).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bytes = s.as_bytes();
        if bytes.len() != 15 && bytes.len() != 18 {
            return Err(IdError::Length(s.to_owned(), s.chars().count()));
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(IdError::Character(s.to_owned(), c));
        }
        let mut core = [0u8; 15];
        core.copy_from_slice(&bytes[..15]);
        let suffix = checksum_suffix(&core);
        if bytes.len() == 18 && !bytes[15..].eq_ignore_ascii_case(&suffix) {
            return Err(IdError::Checksum(
                s.to_owned(),
                s[15..].to_owned(),
                String::from_utf8_lossy(&suffix).into_owned(),
            ));
        }
        Ok(Self::from_core(core))
    }

    /// Builds the 18-character Id from a 15-character core (as `fake-salesforce` mints them).
    pub fn from_core(core: [u8; 15]) -> Self {
        let mut id = [0u8; 18];
        id[..15].copy_from_slice(&core);
        id[15..].copy_from_slice(&checksum_suffix(&core));
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics ever get in (parse checks, from_core's callers mint ASCII).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The 15-character, case-sensitive core that Salesforce compares on.
    pub fn core(&self) -> &str {
        &self.as_str()[..15]
    }

    /// The 3-character key prefix naming the object type (`001` Account, `003` Contact).
    pub fn key_prefix(&self) -> &str {
        &self.as_str()[..3]
    }
}

impl fmt::Display for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SalesforceId({})", self.as_str())
    }
}

impl std::str::FromStr for SalesforceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples_get_their_suffix() {
        // Examples from Salesforce's documentation of 15- and 18-character Ids, checked by hand.
        for id in [
            "001D000000IRFmaIAH",
            "a00D0000008pQSNIA2",
            "00D50000000IZ3ZEAW",
            "00550000001fg5OAAQ",
        ] {
            let parsed = SalesforceId::parse(&id[..15]).unwrap();
            assert_eq!(parsed.as_str(), id);
            assert_eq!(SalesforceId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn id_without_uppercase_gets_aaa() {
        assert_eq!(
            SalesforceId::parse("003000000000001").unwrap().as_str(),
            "003000000000001AAA"
        );
    }

    #[test]
    fn wrong_suffix_is_reported_with_the_expected_one() {
        let err = SalesforceId::parse("001D000000IRFmaAAA").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Salesforce Id "001D000000IRFmaAAA" has the suffix "AAA", but its first 15 characters give "IAH""#
        );
    }

    #[test]
    fn bad_length_and_characters_are_refused() {
        assert!(matches!(
            SalesforceId::parse("001D0"),
            Err(IdError::Length(_, 5))
        ));
        assert!(matches!(
            SalesforceId::parse("001D000000IRF;a"),
            Err(IdError::Character(_, ';'))
        ));
        assert!(matches!(
            SalesforceId::parse(""),
            Err(IdError::Length(_, 0))
        ));
    }

    #[test]
    fn accessors_split_the_id() {
        let id = SalesforceId::parse("001D000000IRFmaIAH").unwrap();
        assert_eq!(id.core(), "001D000000IRFma");
        assert_eq!(id.key_prefix(), "001");
    }
}
