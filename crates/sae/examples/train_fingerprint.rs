//! A fingerprint of what every trainer computes: each configuration below is trained for a
//! few steps on fixed synthetic data, checkpointed, resumed, and its inference-form
//! dictionary and step statistics hashed. Run it before and after a change to the trainers'
//! code: identical lines mean the change left the maths bit for bit as it was.
//!
//!     cargo run --release -p saelab-sae --example train_fingerprint
//!
//! The hashes depend on the machine's float kernels, so compare runs on one machine only.

use saelab_sae::rng::SplitMix64;
use saelab_sae::{L1Variant, Optimizer, TrainArchitecture, TrainConfig, Trainer};

const D_IN: usize = 32;
const D_SAE: usize = 128;
const ROWS: usize = 128;
const STEPS: u64 = 24;

/// Sums of 3 of 256 random directions, with a shared offset: the same for every run.
fn batches(seed: u64) -> Vec<Vec<f32>> {
    let mut rng = SplitMix64::new(seed);
    let dirs: Vec<f32> = (0..256 * D_IN).map(|_| rng.normal()).collect();
    (0..STEPS)
        .map(|_| {
            let mut b = vec![0.3f32; ROWS * D_IN];
            for row in b.chunks_mut(D_IN) {
                for _ in 0..3 {
                    let j = rng.below(256) as usize;
                    let a = rng.uniform(0.5, 2.0);
                    for (v, d) in row.iter_mut().zip(&dirs[j * D_IN..(j + 1) * D_IN]) {
                        *v += a * d;
                    }
                }
            }
            b
        })
        .collect()
}

fn fnv(hash: &mut u64, bits: impl IntoIterator<Item = u64>) {
    for b in bits {
        *hash ^= b;
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

fn hash_dictionary(hash: &mut u64, sae: &saelab_sae::Sae) {
    let w = &sae.weights;
    for v in [&w.w_enc_t, &w.b_enc, &w.w_dec, &w.b_dec] {
        fnv(hash, v.iter().map(|x| x.to_bits() as u64));
    }
    // Debug prints each f32 exactly (the shortest text that reads back to the same bits).
    let text = format!("{:?}", sae.activation);
    fnv(hash, text.bytes().map(u64::from));
    if let Some(t) = &sae.transcoder {
        fnv(hash, t.skip.iter().flatten().map(|x| x.to_bits() as u64));
    }
}

fn run(name: &str, cfg: TrainConfig) -> Result<(), Box<dyn std::error::Error>> {
    let inputs = batches(1);
    let targets = batches(2);
    let dir = tempfile::tempdir()?;
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut trainer = Trainer::new(cfg.clone())?;
    for step in 0..STEPS as usize {
        if step == STEPS as usize / 2 {
            trainer.save_checkpoint(dir.path())?;
            trainer = Trainer::load_checkpoint(cfg.clone(), dir.path())?;
        }
        let stats = match cfg.transcoder {
            true => trainer.step_transcoder(&inputs[step], &targets[step])?,
            false => trainer.step(&inputs[step])?,
        };
        let text = serde_json::to_string(&stats)?;
        fnv(&mut hash, text.bytes().map(u64::from));
    }
    hash_dictionary(&mut hash, &trainer.dictionary());
    println!("{name:<24} {hash:016x}");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let standard = TrainArchitecture::ReluL1 {
        variant: L1Variant::Standard,
    };
    let april = TrainArchitecture::ReluL1 {
        variant: L1Variant::April,
    };
    let base = |arch: TrainArchitecture| {
        let mut cfg = TrainConfig::new(arch, D_IN, D_SAE, STEPS);
        cfg.dead_after_tokens = 2 * ROWS as u64; // AuxK and ghost grads at work
        cfg.l1_coefficient = 1.0;
        cfg.sparsity_window_steps = 5;
        cfg
    };
    let archs = [
        ("topk", TrainArchitecture::TopK { k: 4 }),
        ("batchtopk", TrainArchitecture::BatchTopK { k: 4 }),
        (
            "matryoshka",
            TrainArchitecture::MatryoshkaBatchTopK { k: 4 },
        ),
        ("relu", standard),
        ("april", april),
        ("jumprelu", TrainArchitecture::JumpRelu),
        ("gated", TrainArchitecture::Gated),
    ];
    for (name, arch) in archs {
        run(name, base(arch))?;
        let mut signum = base(arch);
        signum.use_optimizer(Optimizer::Signum);
        run(&format!("{name}+signum"), signum)?;
        if !matches!(arch, TrainArchitecture::Gated) {
            let mut tc = base(arch);
            tc.transcoder = true;
            run(&format!("{name}+transcoder"), tc)?;
        }
        if !matches!(
            arch,
            TrainArchitecture::Gated | TrainArchitecture::MatryoshkaBatchTopK { .. }
        ) {
            let mut skip = base(arch);
            skip.transcoder = true;
            skip.skip_connection = true;
            run(&format!("{name}+skip"), skip)?;
        }
        if matches!(arch, TrainArchitecture::TopK { .. }) {
            let mut floor = base(arch);
            floor.min_density = 2.0 / ROWS as f64;
            run(&format!("{name}+floor"), floor)?;
        }
        if base(arch).penalised() {
            let mut target = base(arch);
            target.target_l0 = Some(8.0);
            run(&format!("{name}+target_l0"), target)?;
        }
    }
    // A heavy penalty and a one-batch window, so that latents die and are revived.
    let dying = |arch| {
        let mut cfg = base(arch);
        cfg.dead_after_tokens = ROWS as u64;
        cfg.l1_coefficient = 30.0;
        cfg.l0_coefficient = 30.0;
        cfg.lr = 0.03;
        cfg
    };
    for (name, arch) in [("relu", standard), ("april", april)] {
        let mut ghost = dying(arch);
        ghost.ghost_grads = true;
        run(&format!("{name}+ghost"), ghost)?;
    }
    for (name, arch) in archs {
        let mut resample = dying(arch);
        resample.resample_every_steps = 5;
        run(&format!("{name}+resample"), resample)?;
    }
    Ok(())
}
