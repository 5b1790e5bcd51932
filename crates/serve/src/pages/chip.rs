//! A token shown on its own (lens tables, search, "what fires here", ablation effects), as
//! opposed to a token inside running text, which keeps its real whitespace.
//!
//! Alone, a token must say what it is: a leading or trailing space, a newline or a tab is
//! drawn as a mark (`·`, `⏎`, `⇥`); a control character, carriage return included, as its
//! code (`<0x0D>`: few fonts draw control pictures); and a token that is only part of a
//! character (a byte-level BPE token holding one byte of `’`, say) as its bytes,
//! `<0xE2>`, instead of the U+FFFD its stored text decodes to. The bytes come from
//! the tokenizer's piece for the token: byte-level BPE writes every byte as a printable
//! character (GPT-2's alphabet, inverted below), SentencePiece's byte fallback as `<0xHH>`.

use maud::{html, Markup};

use crate::state::AppState;

/// One run of a token as shown: text as it reads, or what would not show drawn as a mark
/// (a symbol for whitespace) or a code (a byte or a code point), with what it stands for,
/// its tooltip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Mark { shown: String, means: &'static str },
    Code { shown: String, means: &'static str },
}

/// The token `id` as a chip: its stored text made legible, the id in the tooltip and in
/// `data-token`.
pub fn chip(state: &AppState, id: u32) -> Markup {
    let text = state.catalog.vocabulary.text(id);
    let parts = legible(&text, || state.live.model.tokenizer.id_to_token(id));
    html! {
        code.tokname data-token=(id) title=(format!("token {id}")) {
            @for part in &parts {
                @match part {
                    Part::Text(t) => (t),
                    Part::Mark { shown, means } => span.mark title=(means) { (shown) },
                    Part::Code { shown, means } => span.code title=(means) { (shown) },
                }
            }
        }
    }
}

/// A character or a byte that is not a character on its own.
enum Unit {
    Char(char),
    Byte(u8),
}

/// `text` (the token decoded alone) as parts. `piece` (the tokenizer's name for the token)
/// is asked for only when `text` holds U+FFFD, the mark of bytes that are not text alone.
pub fn legible(text: &str, piece: impl FnOnce() -> Option<String>) -> Vec<Part> {
    let bytes = if text.contains('\u{FFFD}') {
        piece().and_then(|p| piece_bytes(&p))
    } else {
        None
    };
    let units: Vec<Unit> = match &bytes {
        Some(bytes) => bytes
            .utf8_chunks()
            .flat_map(|chunk| {
                let valid = chunk.valid().chars().map(Unit::Char);
                valid.chain(chunk.invalid().iter().map(|&b| Unit::Byte(b)))
            })
            .collect(),
        None => text.chars().map(Unit::Char).collect(),
    };
    let is_space = |u: &Unit| matches!(u, Unit::Char(c) if c.is_whitespace());
    let leading = units.iter().take_while(|u| is_space(u)).count();
    let trailing = units.len() - units.iter().rev().take_while(|u| is_space(u)).count();
    let mut parts: Vec<Part> = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        let at_edge = i < leading || i >= trailing;
        let mark = |shown: &str, means| Part::Mark {
            shown: shown.into(),
            means,
        };
        let code = |shown: String, means| Part::Code { shown, means };
        let part = match *unit {
            Unit::Byte(b) => code(
                format!("<0x{b:02X}>"),
                "a byte of a character that continues in another token",
            ),
            Unit::Char('\n') => mark("⏎", "newline"),
            Unit::Char('\t') => mark("⇥", "tab"),
            Unit::Char('\r') => code(code_point('\r'), "carriage return"),
            Unit::Char(c) if c.is_control() => code(code_point(c), "control character"),
            Unit::Char(' ') if at_edge => mark("·", "space"),
            Unit::Char(c) if at_edge && c.is_whitespace() => code(code_point(c), "whitespace"),
            Unit::Char(c) => {
                match parts.last_mut() {
                    Some(Part::Text(t)) => t.push(c),
                    _ => parts.push(Part::Text(c.to_string())),
                }
                continue;
            }
        };
        parts.push(part);
    }
    if parts.is_empty() {
        parts.push(Part::Mark {
            shown: "∅".into(),
            means: "decodes to no text",
        });
    }
    parts
}

/// `<0x0B>` for an ASCII character (the byte it is), `<U+0085>` beyond.
fn code_point(c: char) -> String {
    if c.is_ascii() {
        format!("<0x{:02X}>", c as u32)
    } else {
        format!("<U+{:04X}>", c as u32)
    }
}

/// The bytes a tokenizer piece stands for: `<0xHH>` (byte fallback), or a byte-level BPE
/// piece; `None` for a piece in neither form.
fn piece_bytes(piece: &str) -> Option<Vec<u8>> {
    if let Some(hex) = piece.strip_prefix("<0x").and_then(|p| p.strip_suffix('>')) {
        if hex.len() == 2 {
            return u8::from_str_radix(hex, 16).ok().map(|b| vec![b]);
        }
    }
    piece.chars().map(byte_of).collect()
}

/// GPT-2's byte-level alphabet read backwards. Bytes that print (`!`..`~`, `¡`..`¬`,
/// `®`..`ÿ`) stand for themselves; the other 68 (controls, space, DEL, NBSP, soft hyphen)
/// were given U+0100 onwards, in byte order, so the k-th of them is U+0100 + k.
fn byte_of(c: char) -> Option<u8> {
    let prints = |b: u32| matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
    let n = u32::from(c);
    if prints(n) {
        return u8::try_from(n).ok();
    }
    let k = n.checked_sub(0x100)?;
    (0u32..=0xFF)
        .filter(|&b| !prints(b))
        .nth(k as usize)
        .and_then(|b| u8::try_from(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Part {
        Part::Text(s.into())
    }

    fn shown(parts: &[Part]) -> String {
        parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Mark { shown, .. } | Part::Code { shown, .. } => shown.as_str(),
            })
            .collect()
    }

    fn no_piece() -> Option<String> {
        panic!("the piece is asked for only when the text is not valid alone")
    }

    #[test]
    fn the_byte_level_alphabet_inverts() {
        assert_eq!(byte_of('Ġ'), Some(b' '));
        assert_eq!(byte_of('Ċ'), Some(b'\n'));
        assert_eq!(byte_of('ĉ'), Some(b'\t'));
        assert_eq!(byte_of('Ā'), Some(0));
        assert_eq!(byte_of('ġ'), Some(0x7F));
        assert_eq!(byte_of('Ń'), Some(0xAD));
        assert_eq!(byte_of('a'), Some(b'a'));
        assert_eq!(byte_of('â'), Some(0xE2));
        assert_eq!(byte_of('Ņ'), None);
        // Every byte has exactly one character.
        let chars: Vec<char> = (0u32..0x200).filter_map(char::from_u32).collect();
        let mut seen = [0u32; 256];
        for c in chars {
            if let Some(b) = byte_of(c) {
                seen[b as usize] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
    }

    #[test]
    fn valid_text_reads_as_itself_with_edge_whitespace_marked() {
        assert_eq!(shown(&legible(" the", no_piece)), "·the");
        assert_eq!(shown(&legible("the ", no_piece)), "the·");
        assert_eq!(shown(&legible("   ", no_piece)), "···");
        assert_eq!(shown(&legible("\n\n", no_piece)), "⏎⏎");
        assert_eq!(shown(&legible("\t", no_piece)), "⇥");
        assert_eq!(shown(&legible(".\n", no_piece)), ".⏎");
        assert_eq!(shown(&legible("\u{b}", no_piece)), "<0x0B>");
        assert_eq!(shown(&legible(" \r\n\t", no_piece)), "·<0x0D>⏎⇥");
        assert_eq!(shown(&legible("\u{a0}x", no_piece)), "<U+00A0>x");
        assert_eq!(legible("café", no_piece), vec![text("café")]);
        assert_eq!(legible("a b", no_piece), vec![text("a b")]);
        assert_eq!(shown(&legible("", no_piece)), "∅");
        assert_eq!(
            legible(" <b>", no_piece),
            vec![
                Part::Mark {
                    shown: "·".into(),
                    means: "space"
                },
                text("<b>")
            ]
        );
    }

    #[test]
    fn bytes_that_are_not_text_alone_show_as_bytes() {
        // `’` is E2 80 99: byte-level BPE may split it as "âĢ" + "Ļ".
        let parts = legible("\u{FFFD}", || Some("âĢ".into()));
        assert_eq!(shown(&parts), "<0xE2><0x80>");
        assert!(parts.iter().all(|p| matches!(p, Part::Code { .. })));
        assert_eq!(shown(&legible("\u{FFFD}", || Some("Ļ".into()))), "<0x99>");
        // A space then the first byte of a character.
        assert_eq!(
            shown(&legible(" \u{FFFD}", || Some("Ġâ".into()))),
            "·<0xE2>"
        );
        // SentencePiece byte fallback.
        assert_eq!(
            shown(&legible("\u{FFFD}", || Some("<0xC3>".into()))),
            "<0xC3>"
        );
        // A token whose bytes are a whole U+FFFD reads as one.
        assert_eq!(
            legible("\u{FFFD}", || Some("ï¿½".into())),
            vec![text("\u{FFFD}")]
        );
        // A piece in no known form: the stored text as it is.
        assert_eq!(
            legible("\u{FFFD}", || Some("▁\u{FFFD}".into())),
            vec![text("\u{FFFD}")]
        );
        assert_eq!(legible("\u{FFFD}", || None), vec![text("\u{FFFD}")]);
    }
}
