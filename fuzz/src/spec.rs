//! The documented token formats restated independently of `cairn-crypto`, as the
//! oracles the fuzz targets compare the real parsers with: written from the
//! format descriptions in `crypto/src/token.rs`, not from its code.

/// The unpadded base64url alphabet (RFC 4648 §5), in value order.
const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Whether `s` is the one canonical unpadded base64url spelling of 32 bytes:
/// 43 characters of the alphabet (258 bits for 256), the last one's 2 low bits zero.
#[must_use]
pub fn is_canonical_secret(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 43
        && bytes.iter().all(|b| B64URL.contains(b))
        && B64URL
            .iter()
            .position(|c| Some(c) == bytes.last())
            .is_some_and(|value| value & 0b11 == 0)
}

/// Whether `s` is a generation as tokens spell it: a u64 in decimal, digits only,
/// no leading zero unless it is `0`.
#[must_use]
pub fn is_canonical_u64(s: &str) -> bool {
    const MAX: &str = "18446744073709551615";
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
        // Same-length decimal strings compare like the numbers they spell.
        && (s.len() < MAX.len() || (s.len() == MAX.len() && s <= MAX))
}

/// Whether `s` is a session id: 1 to 64 characters of `[a-z0-9_]`.
#[must_use]
pub fn is_session_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Length-prefixed concatenation: each field after its length as a u64,
/// big-endian (the input of every token hash and MAC).
#[must_use]
pub fn frame(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracles_accept_and_refuse_what_the_formats_say() {
        // 32 zero bytes, 32 0xff bytes, and another canonical last character.
        assert!(is_canonical_secret(&"A".repeat(43)));
        assert!(is_canonical_secret(&format!("{}8", "_".repeat(42))));
        assert!(is_canonical_secret(&format!("{}w", "_".repeat(42))));
        assert!(!is_canonical_secret(&format!("{}_", "_".repeat(42))));
        assert!(!is_canonical_secret(&format!("{}B", "A".repeat(42))));
        assert!(!is_canonical_secret(&"A".repeat(42)));
        assert!(!is_canonical_secret(&format!("{}=", "A".repeat(42))));
        assert!(!is_canonical_secret(&format!("{}+", "A".repeat(42))));

        for ok in ["0", "7", "10", "18446744073709551615"] {
            assert!(is_canonical_u64(ok), "{ok}");
        }
        for bad in [
            "",
            "00",
            "01",
            "+1",
            "-1",
            "1 ",
            "18446744073709551616",
            "99999999999999999999",
            "100000000000000000000",
        ] {
            assert!(!is_canonical_u64(bad), "{bad}");
        }

        assert!(is_session_id("sess_01") && is_session_id(&"z".repeat(64)));
        for bad in ["", "Sess", "a.b", "a-b", "é", &"z".repeat(65)] {
            assert!(!is_session_id(bad), "{bad}");
        }
        assert_eq!(
            frame(&[b"ab", b""]),
            [&[0, 0, 0, 0, 0, 0, 0, 2][..], b"ab", &[0; 8]].concat()
        );
    }
}
