//! Token windows on the tiny fixture tokenizer (byte-level BPE; `<|endoftext|>` is id 0 and
//! single letters are single tokens: `a` = 65).

use std::path::{Path, PathBuf};

use saelab_data::shuffle::shuffle_documents;
use saelab_data::{windows, Document, Documents, Packing, Window, WindowConfig};
use saelab_model::TextTokenizer;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/tiny/llama/tokenizer.json")
}

/// The fixture as its model folder describes it: BOS = EOS = `<|endoftext|>` (GPT-2 style).
fn tokenizer() -> TextTokenizer {
    TextTokenizer::from_file(&fixture(), Some(0), Some(0)).unwrap()
}

fn docs(texts: &[&str]) -> Documents {
    let docs: Vec<_> = texts
        .iter()
        .map(|t| Ok(Document::new(t.to_string())))
        .collect();
    Box::new(docs.into_iter())
}

fn ids(s: &str) -> Vec<u32> {
    s.bytes().map(|b| b as u32 - 97 + 65).collect()
}

fn all(texts: &[&str], tok: &TextTokenizer, config: WindowConfig) -> Vec<Window> {
    windows(docs(texts), tok, config)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

const T: bool = true;
const F: bool = false;

#[test]
fn the_fixture_reads_letters_as_single_tokens() {
    assert_eq!(tokenizer().encode("abcd").unwrap(), ids("abcd"));
}

#[test]
fn packed_windows_join_documents_with_the_separator() {
    let tok = tokenizer();
    let config = WindowConfig::for_tokenizer(&tok, 5, Packing::Packed);
    assert_eq!((config.start, config.separator), (Some(0), Some(0)));
    let w = all(&["abcd", "efg", "hijklm"], &tok, config);
    let cat = |parts: &[&[u32]]| parts.concat();
    // The separator after "abcd" would open window 2 right after the start token: skipped.
    assert_eq!(w[0].ids, cat(&[&[0], &ids("abcd")]));
    assert_eq!(w[1].ids, cat(&[&[0], &ids("efg"), &[0]]));
    assert_eq!(w[2].ids, cat(&[&[0], &ids("hijk")]));
    assert_eq!(w[3].ids, cat(&[&[0], &ids("lm"), &[0, 0]]));
    assert_eq!(w.len(), 4);
    assert_eq!(w[1].special, [T, F, F, F, T]);
    assert_eq!(w[3].mask, [1, 1, 1, 0, 0]);
    assert_eq!(w[3].special, [T, F, F, T, T]);
    assert_eq!(w[3].real_len(), 3);
}

#[test]
fn padded_windows_hold_one_document_each_and_split_long_ones() {
    let tok = tokenizer();
    let config = WindowConfig::for_tokenizer(&tok, 5, Packing::Padded);
    let w = all(&["abcd", "efg", "hijklm"], &tok, config);
    let got: Vec<(Vec<u32>, Vec<u8>)> = w.iter().map(|w| (w.ids.clone(), w.mask.clone())).collect();
    let want = [
        ([0, 65, 66, 67, 68], [1, 1, 1, 1, 1]),
        ([0, 69, 70, 71, 0], [1, 1, 1, 1, 0]),
        ([0, 72, 73, 74, 75], [1, 1, 1, 1, 1]),
        ([0, 76, 77, 0, 0], [1, 1, 1, 0, 0]),
    ];
    let want: Vec<(Vec<u32>, Vec<u8>)> =
        want.iter().map(|(i, m)| (i.to_vec(), m.to_vec())).collect();
    assert_eq!(got, want);
    assert_eq!(w[1].special, [T, F, F, F, T]);
}

#[test]
fn special_tokens_inside_a_text_are_flagged() {
    let tok = tokenizer();
    let w = all(
        &["a<|endoftext|>b"],
        &tok,
        WindowConfig::for_tokenizer(&tok, 4, Packing::Packed),
    );
    assert_eq!(w[0].ids, [0, 65, 0, 66]);
    assert_eq!(w[0].special, [T, F, T, F]);
}

#[test]
fn without_a_start_token_windows_are_all_text() {
    let tok = tokenizer();
    let config = WindowConfig {
        start: None,
        ..WindowConfig::for_tokenizer(&tok, 4, Packing::Packed)
    };
    let w = all(&["abcd", "ef"], &tok, config);
    assert_eq!(w[0].ids, ids("abcd"));
    // Not at a window start after a start token, so the separator stays.
    assert_eq!(w[1].ids, [0, 69, 70, 0]);
    assert_eq!(w[1].mask, [1, 1, 1, 0]);
    assert_eq!(w[1].special, [T, F, F, T]);
}

#[test]
fn without_endoftext_the_tokenizer_bos_and_eos_are_used() {
    // The same vocabulary with no added special tokens: `<|endoftext|>` is plain text there.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture()).unwrap()).unwrap();
    json["added_tokens"] = serde_json::json!([]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, json.to_string()).unwrap();
    let tok = TextTokenizer::from_file(&path, Some(1), Some(2)).unwrap();
    let config = WindowConfig::for_tokenizer(&tok, 8, Packing::Packed);
    assert_eq!((config.start, config.separator), (Some(1), Some(2)));
    let w = all(&["ab", "c"], &tok, config);
    assert_eq!(w[0].ids, [1, 65, 66, 2, 67, 2, 2, 2]);
    assert_eq!(w[0].special, [T, F, F, T, F, T, T, T]);
}

#[test]
fn shuffled_windows_are_the_same_for_a_seed() {
    let tok = tokenizer();
    let texts: Vec<String> = (0..40)
        .map(|i| "abcdefgh"[..1 + i % 8].to_string())
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let run = |seed: u64| -> Vec<Vec<u32>> {
        let config = WindowConfig::for_tokenizer(&tok, 6, Packing::Padded);
        windows(shuffle_documents(docs(&texts), seed, 16), &tok, config)
            .unwrap()
            .map(|w| w.unwrap().ids)
            .collect()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    let mut shuffled = run(7);
    let config = WindowConfig::for_tokenizer(&tok, 6, Packing::Padded);
    let mut plain: Vec<Vec<u32>> = all(&texts, &tok, config)
        .into_iter()
        .map(|w| w.ids)
        .collect();
    assert_ne!(shuffled, plain);
    shuffled.sort();
    plain.sort();
    assert_eq!(shuffled, plain, "a shuffle loses and adds nothing");
}

#[test]
fn windows_are_made_lazily() {
    // An endless document stream: windows come without waiting for its end, and only the
    // documents they hold are counted as read (tokenizing runs one small batch ahead).
    let tok = tokenizer();
    let endless: Documents = Box::new(std::iter::repeat_with(|| Ok(Document::new("abc".into()))));
    let config = WindowConfig::for_tokenizer(&tok, 9, Packing::Packed);
    let mut w = windows(endless, &tok, config).unwrap();
    let first: Vec<Window> = w.by_ref().take(3).map(Result::unwrap).collect();
    assert_eq!(first[2].ids, [0, 65, 66, 67, 0, 65, 66, 67, 0]);
    // 24 text tokens at 4 per document (3 letters and a separator): 7 documents.
    assert_eq!(w.documents_read(), 7);
}

#[test]
fn a_window_too_short_for_its_start_token_is_an_error() {
    let tok = tokenizer();
    let err = windows(
        docs(&["a"]),
        &tok,
        WindowConfig::for_tokenizer(&tok, 1, Packing::Packed),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("window length: 1 is too short"),
        "{err}"
    );
}

#[test]
fn document_errors_pass_through() {
    let tok = tokenizer();
    let bad: Documents = Box::new(
        vec![
            Ok(Document::new("abc".into())),
            Err(saelab_data::DataError::invalid("doc", "broken")),
        ]
        .into_iter(),
    );
    let config = WindowConfig::for_tokenizer(&tok, 8, Packing::Packed);
    let got: Vec<_> = windows(bad, &tok, config).unwrap().collect();
    assert_eq!(got.len(), 1);
    assert!(got[0].as_ref().unwrap_err().to_string().contains("broken"));
}

#[test]
fn a_bos_the_tokenizer_adds_by_itself_is_not_doubled() {
    // The fixture with a post-processor that prepends <|endoftext|> to every encoding, as
    // Llama's and Gemma's tokenizers prepend their BOS.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture()).unwrap()).unwrap();
    json["post_processor"] = serde_json::json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0],
                                             "tokens": ["<|endoftext|>"]}}
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, json.to_string()).unwrap();
    let tok = TextTokenizer::from_file(&path, Some(0), Some(0)).unwrap();
    assert_eq!(tok.encode("ab").unwrap(), [0, 65, 66]);
    let w = all(
        &["ab", "cd"],
        &tok,
        WindowConfig::for_tokenizer(&tok, 6, Packing::Packed),
    );
    assert_eq!(w[0].ids, [0, 65, 66, 0, 67, 68]);
    // A text that really starts with the token keeps it.
    let w = all(
        &["<|endoftext|>ab"],
        &tok,
        WindowConfig::for_tokenizer(&tok, 4, Packing::Packed),
    );
    assert_eq!(w[0].ids, [0, 0, 65, 66]);
}

/// `corpus --stats --ctx 10000000000` used to grow one window until the process was killed.
#[test]
fn a_window_longer_than_the_stated_bound_is_an_error() {
    let tok = tokenizer();
    let most = saelab_model::config::MAX_CONTEXT;
    for len in [most + 1, 10_000_000_000, usize::MAX] {
        for packing in [Packing::Packed, Packing::Padded] {
            let err = windows(
                docs(&["abc"]),
                &tok,
                WindowConfig::for_tokenizer(&tok, len, packing),
            )
            .err()
            .unwrap_or_else(|| panic!("a window of {len} tokens was accepted"));
            assert!(
                err.to_string().contains("window length") && err.to_string().contains("bound"),
                "{len}: {err}"
            );
        }
    }
}
