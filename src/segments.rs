//! SMS segment counting (GSM 03.38): GSM-7 text is 1 segment up to 160 septets, else 153
//! septets a segment; the extension characters take 2 septets; any character outside GSM-7
//! makes the message UCS-2: 1 segment up to 70 UTF-16 code units, else 67 a segment.

use crate::boundary::{Args, Ret};
use crate::error::Result;
use crate::sql_function;

/// The GSM 03.38 basic character set (one septet each). The escape code itself is not text.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The extension table: escape + character, two septets each.
const GSM7_EXTENSION: &str = "^{}\\[]~|€\u{000C}";

/// Septets needed in GSM-7, or None if some character is outside it.
pub fn gsm7_septets(body: &str) -> Option<usize> {
    body.chars().try_fold(0usize, |n, c| {
        if GSM7_BASIC.contains(c) {
            Some(n + 1)
        } else if GSM7_EXTENSION.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    })
}

/// Segments a message body takes. An empty body is still one message.
pub fn segments(body: &str) -> i32 {
    let (units, single, multi) = match gsm7_septets(body) {
        Some(septets) => (septets, 160, 153),
        None => (body.encode_utf16().count(), 70, 67),
    };
    if units <= single {
        1
    } else {
        units.div_ceil(multi) as i32
    }
}

/// `billing.sms_segments(body) → integer`, IMMUTABLE: no locks, no table access. 22023 for NULL.
fn sms_segments(a: &Args) -> Result<Ret> {
    Ok(Ret::of(segments(&a.text(0, "body")?)))
}
sql_function!(
    billing_sms_segments,
    pg_finfo_billing_sms_segments,
    sms_segments
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_boundaries_160_and_153() {
        assert_eq!(segments(""), 1);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        assert_eq!(segments(&"a".repeat(459)), 3);
    }

    #[test]
    fn extension_characters_take_two_septets() {
        assert_eq!(gsm7_septets("{}"), Some(4));
        assert_eq!(gsm7_septets("€5"), Some(3));
        assert_eq!(segments(&"€".repeat(80)), 1); // 160 septets
        assert_eq!(segments(&format!("{}a", "€".repeat(80))), 2); // 161
        for c in ['^', '{', '}', '\\', '[', ']', '~', '|', '€', '\u{000C}'] {
            assert_eq!(gsm7_septets(&c.to_string()), Some(2), "{c:?}");
        }
    }

    #[test]
    fn gsm7_accents_stay_single_septet_others_switch_to_ucs2() {
        assert_eq!(gsm7_septets("Ça été Ünïcode? ¿Sí!"), None); // ï and í are not GSM-7
        assert_eq!(gsm7_septets("Ça été Ü à ñ ¿ ¡ §"), Some(18));
        assert_eq!(segments(&"é".repeat(160)), 1);
        assert_eq!(segments(&"á".repeat(70)), 1); // á is not GSM-7: UCS-2
        assert_eq!(segments(&"á".repeat(71)), 2);
    }

    #[test]
    fn ucs2_boundaries_70_and_67_in_utf16_units() {
        assert_eq!(segments(&"你".repeat(70)), 1);
        assert_eq!(segments(&"你".repeat(71)), 2);
        assert_eq!(segments(&"你".repeat(134)), 2);
        assert_eq!(segments(&"你".repeat(135)), 3);
        // An emoji outside the BMP is two UTF-16 code units.
        assert_eq!(segments(&"😀".repeat(35)), 1);
        assert_eq!(segments(&"😀".repeat(36)), 2);
        // One non-GSM character turns a long GSM text into UCS-2.
        assert_eq!(segments(&format!("{}😀", "a".repeat(100))), 2);
    }
}
