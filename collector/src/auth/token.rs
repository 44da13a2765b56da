//! Bearer tokens: making a new one, its SHA-256 (the only form the configuration holds), and
//! finding a presented token among the configured ones in constant time.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Capability;

/// The prefix of tokens `new_token` makes, so a leaked one is recognisable in a scan.
const PREFIX: &str = "agt_";

/// A SHA-256 digest.
pub type Sha256Digest = [u8; 32];

/// A new random token (256 bits from the operating system's generator, hex, prefixed).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    // The thread generator is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex(&bytes))
}

/// The SHA-256 of `token`.
pub fn digest(token: &str) -> Sha256Digest {
    Sha256::digest(token.as_bytes()).into()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The digest written as 64 hex digits (either case), or `None`.
pub fn parse_sha256(text: &str) -> Option<Sha256Digest> {
    if text.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (at, pair) in text.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        digest[at] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(digest)
}

/// The `[[tokens]]` stanza granting `can` on `tenants` to a token of SHA-256 `sha256`.
pub fn stanza(name: &str, sha256: &Sha256Digest, tenants: &[String], can: &[Capability]) -> String {
    let quoted = |items: Vec<&str>| {
        items
            .iter()
            .map(|item| format!("{item:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "[[tokens]]\nname = {name:?}\nsha256 = \"{}\"\ntenants = [{}]\ncan = [{}]\n",
        hex(sha256),
        quoted(tenants.iter().map(String::as_str).collect()),
        quoted(can.iter().map(|can| can.as_str()).collect()),
    )
}

/// The index in `known` of the digest equal to `presented`'s. Every entry is compared, each
/// in constant time, so the time taken says nothing about which bytes matched.
pub fn find(known: &[Sha256Digest], presented: &str) -> Option<usize> {
    let presented = digest(presented);
    let mut found = None;
    for (at, candidate) in known.iter().enumerate() {
        if bool::from(candidate.ct_eq(&presented)) {
            found = Some(at);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_differ_and_their_digest_round_trips_through_hex() {
        let (one, two) = (new_token(), new_token());
        assert_ne!(one, two);
        assert!(one.starts_with(PREFIX) && one.len() == PREFIX.len() + 64);
        let written = hex(&digest(&one));
        assert_eq!(parse_sha256(&written), Some(digest(&one)));
        assert_eq!(parse_sha256(&written.to_uppercase()), Some(digest(&one)));
    }

    #[test]
    fn a_known_value_hashes_as_sha256_does() {
        // `printf abc | sha256sum`
        assert_eq!(
            hex(&digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_digests_are_refused() {
        for text in [
            "",
            "abc",
            &"g".repeat(64),
            &"a".repeat(63),
            &"a".repeat(65),
            &"é".repeat(32),
        ] {
            assert_eq!(parse_sha256(text), None, "{text:?}");
        }
    }

    #[test]
    fn find_names_the_matching_digest_only() {
        let known = [digest("one"), digest("two"), digest("three")];
        assert_eq!(find(&known, "two"), Some(1));
        assert_eq!(find(&known, "three"), Some(2));
        assert_eq!(find(&known, "four"), None);
        assert_eq!(find(&known, ""), None);
        assert_eq!(find(&[], "one"), None);
    }

    #[test]
    fn the_stanza_parses_back_as_a_valid_token_entry() {
        let sha256 = digest("secret");
        let text = stanza(
            "team-a agents",
            &sha256,
            &["team-a".to_owned()],
            &[Capability::Ingest, Capability::Read],
        );
        let config = crate::CollectorConfig::parse(&text).expect("the stanza is valid");
        assert_eq!(config.tokens.len(), 1);
        let token = &config.tokens[0];
        assert_eq!(token.name, "team-a agents");
        assert_eq!(parse_sha256(&token.sha256), Some(sha256));
        assert_eq!(token.tenants, ["team-a"]);
        assert_eq!(token.can, [Capability::Ingest, Capability::Read]);
    }
}
