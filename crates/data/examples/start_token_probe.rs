//! Which token should open every window? Measures the default model's cross-entropy on the
//! same text tokens behind each candidate start token (none, BOS, `<|endoftext|>`), for
//! windows cut at a document start (wiki) and in the middle of a document (pydocs).
//!
//! cargo run --release -p saelab-data --example start_token_probe   (needs scripts/setup.sh)

use candle_core::{DType, Tensor, D};
use saelab_data::{Corpus, CorpusOptions};
use saelab_model::{Batch, Hooks};

const CONTENT: usize = 127;
const ROWS: usize = 32;
const BATCH: usize = 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let m = saelab_model::load(None)?;
    let tok = &m.tokenizer;
    let eot = tok.encode("<|endoftext|>")?;
    println!(
        "bos {:?} eos {:?} <|endoftext|> {:?}",
        tok.bos_id(),
        tok.eos_id(),
        eot
    );
    let mut candidates: Vec<(String, Option<u32>)> = vec![("none".into(), None)];
    for id in [tok.bos_id(), eot.first().copied()].into_iter().flatten() {
        candidates.push((
            format!("{:?} ({id})", tok.id_to_token(id).unwrap_or_default()),
            Some(id),
        ));
    }
    for (corpus, skip) in [("wiki", 0usize), ("pydocs", 400)] {
        let mut rows = Vec::new();
        for doc in Corpus::open(corpus, &CorpusOptions::default())?.documents() {
            let ids = tok.encode(&doc?.text)?;
            if ids.len() >= skip + CONTENT {
                rows.push(ids[skip..skip + CONTENT].to_vec());
            }
            if rows.len() == ROWS {
                break;
            }
        }
        for (name, start) in &candidates {
            let (mut sum, mut n) = (0f64, 0usize);
            for chunk in rows.chunks(BATCH) {
                let inputs: Vec<Vec<u32>> = chunk
                    .iter()
                    .map(|r| start.iter().copied().chain(r.iter().copied()).collect())
                    .collect();
                let offset = usize::from(start.is_some());
                let seq = inputs[0].len();
                let flat: Vec<u32> = inputs.concat();
                let batch = Batch::from_parts(flat, vec![1; chunk.len() * seq], chunk.len(), seq)?;
                let logits = m
                    .model
                    .forward(&batch, &mut Hooks::logits())?
                    .logits
                    .unwrap();
                let logp = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
                // Score content tokens 1.. (each predicted from the same content before it).
                let targets: Vec<u32> = chunk.iter().flat_map(|r| r[1..].to_vec()).collect();
                let t = Tensor::from_vec(targets, (chunk.len(), CONTENT - 1, 1), logits.device())?;
                let picked = logp
                    .narrow(1, offset, CONTENT - 1)?
                    .contiguous()?
                    .gather(&t, 2)?
                    .to_dtype(DType::F64)?
                    .sum_all()?
                    .to_scalar::<f64>()?;
                sum -= picked;
                n += chunk.len() * (CONTENT - 1);
            }
            println!(
                "{corpus:7} start {name:28} mean CE {:.4} over {n} tokens",
                sum / n as f64
            );
        }
    }
    Ok(())
}
