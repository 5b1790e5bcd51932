//! Labels for documents: from their metadata (`topic`, `source`, a JSONL field) or from their
//! text (`contains:WORD`), as the probes and the XOR experiment read them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use saelab_data::Document;
use serde_json::Value;

use crate::error::{ProbeError, Result};

/// What a label is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelSpec {
    /// One class per value of a metadata field (`topic`).
    Field(String),
    /// Binary: 1 where the field holds one of these values, else 0 (`topic=People|Arts`).
    FieldIn { field: String, values: Vec<String> },
    /// Binary: 1 where the text contains this word, as a whole word, ignoring case
    /// (`contains:war`).
    Contains(String),
}

impl FromStr for LabelSpec {
    type Err = ProbeError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            ProbeError::invalid(
                "label",
                format!("`{s}`: {why}; expected FIELD, FIELD=VALUE[|VALUE...] or contains:WORD"),
            )
        };
        if let Some(word) = s.strip_prefix("contains:") {
            let word = word.trim();
            if word.is_empty() || word.chars().any(|c| !c.is_alphanumeric()) {
                return Err(bad("the word must be letters or digits only"));
            }
            return Ok(LabelSpec::Contains(word.to_lowercase()));
        }
        match s.split_once('=') {
            Some((field, values)) => {
                let values: Vec<String> = values.split('|').map(str::to_string).collect();
                if field.is_empty() || values.iter().any(String::is_empty) {
                    return Err(bad("a field name and non-empty values are needed"));
                }
                Ok(LabelSpec::FieldIn {
                    field: field.to_string(),
                    values,
                })
            }
            None if !s.is_empty() => Ok(LabelSpec::Field(s.to_string())),
            None => Err(bad("it is empty")),
        }
    }
}

impl fmt::Display for LabelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelSpec::Field(field) => write!(f, "{field}"),
            LabelSpec::FieldIn { field, values } => write!(f, "{field}={}", values.join("|")),
            LabelSpec::Contains(word) => write!(f, "contains:{word}"),
        }
    }
}

impl LabelSpec {
    /// The metadata field read, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            LabelSpec::Field(field) | LabelSpec::FieldIn { field, .. } => Some(field),
            LabelSpec::Contains(_) => None,
        }
    }

    /// The label's raw value for a document: `None` where its field is missing.
    fn value(&self, doc: &Document) -> Option<String> {
        match self {
            LabelSpec::Field(field) => doc.meta.get(field).and_then(value_text),
            LabelSpec::FieldIn { field, values } => {
                let v = doc.meta.get(field).and_then(value_text)?;
                Some(u8::from(values.contains(&v)).to_string())
            }
            LabelSpec::Contains(word) => Some(u8::from(contains_word(&doc.text, word)).to_string()),
        }
    }

    /// Class names in class-index order: binary specs name 0 and 1, fields their values
    /// sorted.
    fn class_names(&self, values: &BTreeMap<String, usize>) -> Vec<String> {
        match self {
            LabelSpec::Field(_) => values.keys().cloned().collect(),
            _ => vec![format!("not {self}"), format!("{self}")],
        }
    }
}

/// A metadata value as a class name: strings as they are, numbers and booleans printed;
/// null, arrays and objects are not labels.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whole-word, case-insensitive containment: "war" is in "the war ended" but not in "award".
pub fn contains_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|w| w.len() == word.len() && w.to_lowercase() == word)
}

/// Documents with one label per spec.
#[derive(Clone, Debug)]
pub struct LabelledDocuments {
    pub texts: Vec<String>,
    /// A short name per document (its title, file or position) for examples and errors.
    pub names: Vec<String>,
    pub specs: Vec<LabelSpec>,
    /// `labels[s][i]`: spec `s`'s class index for document `i`.
    pub labels: Vec<Vec<u32>>,
    /// `classes[s]`: spec `s`'s class names.
    pub classes: Vec<Vec<String>>,
    /// Documents left out because a label's field was missing (with `skip_missing`).
    pub skipped_missing: usize,
}

/// A document's short name: its title, path or file, else its position.
fn document_name(doc: &Document, index: usize) -> String {
    ["title", "path", "file"]
        .iter()
        .find_map(|k| doc.meta.get(*k).and_then(value_text))
        .unwrap_or_else(|| format!("document {}", index + 1))
}

/// Reads up to `limit` documents and labels each by every spec. A document without a
/// spec's field is an error naming it, unless `skip_missing` leaves such documents out.
pub fn label_documents(
    documents: impl Iterator<Item = saelab_data::Result<Document>>,
    specs: &[LabelSpec],
    limit: usize,
    skip_missing: bool,
) -> Result<LabelledDocuments> {
    if specs.is_empty() {
        return Err(ProbeError::invalid("label", "no label was given"));
    }
    let mut texts = Vec::new();
    let mut names = Vec::new();
    let mut raw: Vec<Vec<String>> = vec![Vec::new(); specs.len()];
    let mut skipped_missing = 0;
    for (index, doc) in documents.enumerate() {
        if texts.len() == limit {
            break;
        }
        let doc = doc?;
        let values: Vec<Option<String>> = specs.iter().map(|s| s.value(&doc)).collect();
        if let Some(missing) = values.iter().position(Option::is_none) {
            if skip_missing {
                skipped_missing += 1;
                continue;
            }
            let field = specs[missing].field().unwrap_or_default();
            return Err(ProbeError::invalid(
                "label",
                format!(
                    "`{}`: document {} of the corpus ({}) has no field `{field}` (or it is \
                     not a string, number or boolean); pick a corpus whose documents all \
                     have it, or skip such documents (--skip-missing)",
                    specs[missing],
                    index + 1,
                    document_name(&doc, index),
                ),
            ));
        }
        for (column, value) in raw.iter_mut().zip(values) {
            column.push(value.unwrap_or_default());
        }
        names.push(document_name(&doc, index));
        texts.push(doc.text);
    }
    let mut labels = Vec::with_capacity(specs.len());
    let mut classes = Vec::with_capacity(specs.len());
    for (spec, column) in specs.iter().zip(&raw) {
        let mut index: BTreeMap<String, usize> = column.iter().map(|v| (v.clone(), 0)).collect();
        if !matches!(spec, LabelSpec::Field(_)) {
            index = BTreeMap::from([("0".to_string(), 0), ("1".to_string(), 1)]);
        }
        for (i, v) in index.values_mut().enumerate() {
            *v = i;
        }
        let present = column
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if present < 2 {
            return Err(ProbeError::invalid(
                "label",
                format!(
                    "`{spec}` has one class only ({}) over the {} documents read; a probe \
                     needs at least two",
                    column.first().map_or("none", String::as_str),
                    column.len()
                ),
            ));
        }
        labels.push(column.iter().map(|v| index[v] as u32).collect());
        classes.push(spec.class_names(&index));
    }
    Ok(LabelledDocuments {
        texts,
        names,
        specs: specs.to_vec(),
        labels,
        classes,
        skipped_missing,
    })
}

impl LabelledDocuments {
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Count of documents per class of spec `s`.
    pub fn class_counts(&self, s: usize) -> Vec<usize> {
        let mut counts = vec![0; self.classes[s].len()];
        for &l in &self.labels[s] {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Keeps at most `per_group` documents of each combination of the labels' classes (one
    /// label: each class; two: each of the four cells of the XOR table), picked by `seed`, in
    /// their corpus order.
    pub fn balanced(&self, per_group: usize, seed: u64) -> LabelledDocuments {
        let mut groups: BTreeMap<Vec<u32>, Vec<usize>> = BTreeMap::new();
        for i in 0..self.len() {
            let key = self.labels.iter().map(|l| l[i]).collect();
            groups.entry(key).or_default().push(i);
        }
        let mut keep = Vec::new();
        for members in groups.values() {
            let mut members = members.clone();
            crate::split::shuffle(&mut members, seed);
            members.truncate(per_group);
            keep.extend(members);
        }
        keep.sort_unstable();
        self.select(&keep)
    }

    fn select(&self, keep: &[usize]) -> LabelledDocuments {
        LabelledDocuments {
            texts: keep.iter().map(|&i| self.texts[i].clone()).collect(),
            names: keep.iter().map(|&i| self.names[i].clone()).collect(),
            specs: self.specs.clone(),
            labels: self
                .labels
                .iter()
                .map(|l| keep.iter().map(|&i| l[i]).collect())
                .collect(),
            classes: self.classes.clone(),
            skipped_missing: self.skipped_missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str, meta: &[(&str, Value)]) -> saelab_data::Result<Document> {
        let mut d = Document::new(text.to_string());
        for (k, v) in meta {
            d = d.with(k, v.clone());
        }
        Ok(d)
    }

    #[test]
    fn specs_parse_and_print_back() {
        for s in ["topic", "topic=People|Arts", "contains:war"] {
            assert_eq!(s.parse::<LabelSpec>().unwrap().to_string(), s);
        }
        for bad in [
            "",
            "=x",
            "topic=",
            "topic=a||b",
            "contains:",
            "contains:two words",
        ] {
            let e = bad.parse::<LabelSpec>().unwrap_err().to_string();
            assert!(e.starts_with("label: "), "{e}");
        }
    }

    #[test]
    fn words_match_whole_and_ignore_case() {
        assert!(contains_word("The War ended.", "war"));
        assert!(!contains_word("an award", "war"));
        assert!(contains_word("war", "war"));
    }

    #[test]
    fn fields_become_sorted_classes_and_binary_specs_0_1() {
        let docs = vec![
            doc("a war", &[("topic", "b".into())]),
            doc("peace", &[("topic", "a".into())]),
            doc("war again", &[("topic", "b".into())]),
        ];
        let specs: Vec<LabelSpec> = ["topic", "topic=a", "contains:war"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let l = label_documents(docs.into_iter(), &specs, 10, false).unwrap();
        assert_eq!(l.classes[0], ["a", "b"]);
        assert_eq!(l.labels[0], [1, 0, 1]);
        assert_eq!(l.labels[1], [0, 1, 0]);
        assert_eq!(l.labels[2], [1, 0, 1]);
        assert_eq!(l.classes[2], ["not contains:war", "contains:war"]);
    }

    #[test]
    fn a_missing_field_is_named_or_skipped() {
        let docs = || {
            vec![
                doc("x", &[("topic", "a".into())]),
                doc("y", &[("title", "Untitled".into())]),
                doc("z", &[("topic", "b".into())]),
            ]
            .into_iter()
        };
        let spec = ["topic".parse().unwrap()];
        let e = label_documents(docs(), &spec, 10, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Untitled") && e.contains("no field `topic`"),
            "{e}"
        );
        let l = label_documents(docs(), &spec, 10, true).unwrap();
        assert_eq!((l.len(), l.skipped_missing), (2, 1));
    }

    #[test]
    fn one_class_is_refused() {
        let docs = (0..3).map(|_| doc("x", &[("topic", "a".into())]));
        let e = label_documents(docs, &["topic".parse().unwrap()], 10, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("one class only (a)"), "{e}");
    }

    #[test]
    fn balancing_caps_every_cell() {
        let docs: Vec<_> = (0..40)
            .map(|i| {
                let text = if i % 4 == 0 { "war" } else { "peace" };
                doc(text, &[("topic", if i < 30 { "a" } else { "b" }.into())])
            })
            .collect();
        let specs: Vec<LabelSpec> = ["topic=a", "contains:war"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let l = label_documents(docs.into_iter(), &specs, 100, false).unwrap();
        let b = l.balanced(3, 7);
        // Cells: (a, war) 8, (a, peace) 22, (b, war) 2, (b, peace) 8 → 3 + 3 + 2 + 3.
        assert_eq!(b.len(), 11);
        assert_eq!(b.balanced(3, 7).texts, b.texts);
    }
}
