//! Recovery codes: ten per user, single-use, shown once. A code is ten
//! characters of an unambiguous alphabet in two groups (`k7f2m-9qx4t`,
//! 50 bits), kept only as SHA-256: a guess costs a login's throttled
//! attempt, and 50 bits of randomness need no slow hash.

use rand::Rng;
use sha2::{Digest, Sha256};

/// How many codes a user gets.
pub const COUNT: usize = 10;
/// Lower-case letters and digits without 0/o, 1/l/i: 32 symbols.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// `COUNT` new codes.
pub fn generate() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..COUNT)
        .map(|_| {
            let mut chars = (0..10).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
            let first: String = chars.by_ref().take(5).collect();
            let second: String = chars.collect();
            format!("{first}-{second}")
        })
        .collect()
}

/// What is stored for `code`: SHA-256 of its normal form (lower case,
/// without spaces or dashes), so `K7F2M 9QX4T` is the same code.
pub fn hash(code: &str) -> Vec<u8> {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    Sha256::digest(normal.as_bytes()).to_vec()
}

/// Whether `code` has a recovery code's shape (not a TOTP code).
pub fn looks_like(code: &str) -> bool {
    let normal: Vec<char> = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    normal.len() == 10 && normal.iter().all(char::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_ten_distinct_and_read_the_same_however_typed() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), COUNT);
        for code in &codes {
            assert_eq!(code.len(), 11);
            assert!(looks_like(code));
            assert_eq!(hash(code), hash(&code.to_uppercase().replace('-', " ")));
        }
        assert!(!looks_like("123456"));
        assert_ne!(hash(&codes[0]), hash(&codes[1]));
    }
}
