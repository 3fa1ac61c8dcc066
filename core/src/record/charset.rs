//! Character sets: collation id to charset name, and exact (never lossy) decoding to UTF-8.

use std::borrow::Cow;

use encoding_rs::Encoding;
use mysql_common::collations::{Collation, CollationId};

/// The MySQL charset name of a collation id, `None` when the id is unknown.
///
/// Ids below 256 are shared by MySQL and MariaDB. MariaDB's UCA 14.0 collations (ids 2048 and up)
/// encode the charset in bits 8..: utf8mb3 = 0x8xx, ucs2 = 0x9xx, utf8mb4 = 0xAxx, utf16 = 0xBxx,
/// utf32 = 0xCxx.
pub(crate) fn charset_of_collation(id: u16) -> Option<&'static str> {
    if id >= 2048 {
        return match (id >> 8) & 0x7 {
            0 => Some("utf8mb3"),
            1 => Some("ucs2"),
            2 => Some("utf8mb4"),
            3 => Some("utf16"),
            4 => Some("utf32"),
            _ => None,
        };
    }
    let cid = CollationId::from(id);
    if cid == CollationId::UNKNOWN_COLLATION_ID {
        // MariaDB-specific ids below 2048 that MySQL does not define.
        return match id {
            576..=599 => Some("utf8mb3"),
            608..=631 => Some("utf8mb4"),
            640..=663 => Some("ucs2"),
            672..=695 => Some("utf16"),
            736..=759 => Some("utf32"),
            1025..=1279 => None,
            _ => None,
        };
    }
    let c = Collation::resolve(cid);
    match c.charset {
        "unknown" => None,
        "utf8" => Some("utf8mb3"),
        other => Some(other),
    }
}

fn encoding_of(charset: &str) -> Option<&'static Encoding> {
    use encoding_rs as e;
    Some(match charset {
        "latin1" => e::WINDOWS_1252,
        "latin2" => e::ISO_8859_2,
        "latin7" => e::ISO_8859_13,
        "greek" => e::ISO_8859_7,
        "hebrew" => e::ISO_8859_8,
        "cp1250" => e::WINDOWS_1250,
        "cp1251" => e::WINDOWS_1251,
        "cp1256" => e::WINDOWS_1256,
        "cp1257" => e::WINDOWS_1257,
        "cp866" => e::IBM866,
        "koi8r" => e::KOI8_R,
        "koi8u" => e::KOI8_U,
        "gbk" | "gb2312" => e::GBK,
        "gb18030" => e::GB18030,
        "big5" => e::BIG5,
        "sjis" | "cp932" => e::SHIFT_JIS,
        "ujis" | "eucjpms" => e::EUC_JP,
        "euckr" => e::EUC_KR,
        "tis620" => e::WINDOWS_874,
        "ucs2" | "utf16" => e::UTF_16BE,
        "utf16le" => e::UTF_16LE,
        _ => return None,
    })
}

/// Decodes `bytes` of `charset` to UTF-8, exactly. `None` when the charset is unknown or
/// unsupported, or when the bytes are not valid in it: the caller must then keep the raw bytes
/// rather than guess.
pub(crate) fn decode<'a>(bytes: &'a [u8], charset: Option<&str>) -> Option<Cow<'a, str>> {
    match charset {
        Some("utf8mb4" | "utf8mb3" | "utf8") => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
        Some("ascii") => bytes
            .is_ascii()
            .then(|| std::str::from_utf8(bytes).ok().map(Cow::Borrowed))
            .flatten(),
        Some("utf32") => decode_utf32(bytes).map(Cow::Owned),
        Some("binary") => None,
        Some(cs) => {
            if bytes.is_ascii() && !matches!(cs, "ucs2" | "utf16" | "utf16le") {
                return std::str::from_utf8(bytes).ok().map(Cow::Borrowed);
            }
            let enc = encoding_of(cs)?;
            enc.decode_without_bom_handling_and_without_replacement(bytes)
        }
        // Unknown charset: ASCII means the same in every ASCII-compatible charset, and that is
        // the only case decoded; anything else stays raw.
        // NUL bytes are excluded too: they are how UCS-2/UTF-16 spell ASCII.
        None => (bytes.is_ascii() && !bytes.contains(&0))
            .then(|| std::str::from_utf8(bytes).ok().map(Cow::Borrowed))
            .flatten(),
    }
}

fn decode_utf32(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    bytes
        .chunks_exact(4)
        .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

/// The name DTS Avro uses for a charset (`utf8` for `utf8mb3`, which older readers reject).
pub(crate) fn dts_name(charset: &str) -> &str {
    match charset {
        "utf8mb3" => "utf8",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collations() {
        assert_eq!(charset_of_collation(45), Some("utf8mb4"));
        assert_eq!(charset_of_collation(255), Some("utf8mb4"));
        assert_eq!(charset_of_collation(8), Some("latin1"));
        assert_eq!(charset_of_collation(28), Some("gbk"));
        assert_eq!(charset_of_collation(63), Some("binary"));
        assert_eq!(charset_of_collation(33), Some("utf8mb3"));
        assert_eq!(charset_of_collation(0), None);
    }

    #[test]
    fn decoding_is_exact() {
        assert_eq!(
            decode("杭州市".as_bytes(), Some("utf8mb4")).unwrap(),
            "杭州市"
        );
        // gbk for 杭州市
        assert_eq!(
            decode(&[0xba, 0xbc, 0xd6, 0xdd, 0xca, 0xd0], Some("gbk")).unwrap(),
            "杭州市"
        );
        assert_eq!(decode(&[0xe9], Some("latin1")).unwrap(), "\u{e9}");
        assert_eq!(decode(&[0x80], Some("latin1")).unwrap(), "\u{20ac}");
        assert!(decode(&[0xff, 0xfe], Some("utf8mb4")).is_none());
        assert!(decode(&[0xe9], None).is_none());
        assert_eq!(decode(b"abc", None).unwrap(), "abc");
        assert!(decode(b"abc", Some("binary")).is_none());
        assert!(decode(&[0x81, 0x20], Some("gbk")).is_none());
    }
}
