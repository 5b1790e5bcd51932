//! The evaluator on a tiny random Llama: an identity dictionary changes nothing, padding
//! changes nothing, and inputs that do not fit are refused.

use saelab_data::windows::Window;
use saelab_eval::{evaluate, EvalDictionary, EvalOptions, EvalResults};
use saelab_model::{HookPoint, LoadedModel};
use saelab_sae::{Activation, Sae, SaeWeights};

fn tiny_llama() -> LoadedModel {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../model/tests/fixtures/tiny/llama"
    );
    saelab_model::load::load_hf_dir(std::path::Path::new(dir), "llama").unwrap()
}

/// A window starting with `<|endoftext|>` (id 0), right-padded to `len`.
fn window(m: &LoadedModel, text: &str, len: usize) -> Window {
    let mut ids = vec![0];
    ids.extend(m.tokenizer.encode(text).unwrap());
    assert!(ids.len() <= len, "text too long for the window");
    let real = ids.len();
    ids.resize(len, 0);
    let mask: Vec<u8> = (0..len).map(|t| u8::from(t < real)).collect();
    let special = (0..len).map(|t| t == 0 || t >= real).collect();
    Window { ids, mask, special }
}

fn identity(d: usize) -> Sae {
    Sae::identity(d).unwrap()
}

/// A lossy dictionary: random directions, TopK.
fn lossy(d: usize, d_sae: usize, k: usize) -> Sae {
    let w = SaeWeights::init_tied(d, d_sae, 1.0, 7);
    Sae::new(w, Activation::TopK { k }).unwrap()
}

fn dictionary(m: &LoadedModel, name: &str, hook: &str, sae: Sae) -> EvalDictionary {
    EvalDictionary {
        input_hook: None,
        name: name.into(),
        path: format!("/dictionaries/{name}"),
        hook: HookPoint::parse(hook, &m.model.cfg).unwrap(),
        sae: sae.into(),
        prune: None,
    }
}

fn run(m: &LoadedModel, windows: &[Window], dicts: &[EvalDictionary]) -> EvalResults {
    let options = EvalOptions {
        batch_windows: 2,
        ..EvalOptions::default()
    };
    evaluate(&m.model, windows, dicts, &options, &mut |_| {}).unwrap()
}

const TEXTS: [&str; 3] = [
    "the cat sat on the mat and looked at the dog",
    "a quick brown fox jumps over the lazy dog",
    "hello world, this is a tiny model",
];

#[test]
fn an_identity_dictionary_changes_nothing() {
    let m = tiny_llama();
    let windows: Vec<Window> = TEXTS.iter().map(|t| window(&m, t, 48)).collect();
    for hook in [
        "blocks.0.hook_resid_post",
        "blocks.1.hook_mlp_out",
        "blocks.1.attn.hook_z",
        "hook_embed",
    ] {
        let d = HookPoint::parse(hook, &m.model.cfg)
            .unwrap()
            .width(&m.model.cfg);
        let r = run(&m, &windows, &[dictionary(&m, "id", hook, identity(d))]);
        let down = &r.dictionaries[0].downstream;
        assert_eq!(down.ce_spliced, down.ce_clean, "{hook}");
        assert_eq!(down.kl, 0.0, "{hook}");
        assert_eq!(r.dictionaries[0].reconstruction.fvu, 0.0, "{hook}");
        // The random perturbation at cosine 1 is the activation itself, up to rounding.
        assert!(down.kl_random < 1e-6, "{hook}: {}", down.kl_random);
        assert!(r.hooks[0].kl_zero > 0.0 && r.hooks[0].ce_zero != r.hooks[0].ce_clean);
    }
}

#[test]
fn padding_does_not_change_the_cross_entropy() {
    let m = tiny_llama();
    let hook = "blocks.0.hook_resid_post";
    let dicts = [dictionary(&m, "lossy", hook, lossy(32, 64, 4))];
    let unpadded = |text: &str| window(&m, text, 1 + m.tokenizer.encode(text).unwrap().len());
    let (short, long) = (unpadded(TEXTS[2]), unpadded(TEXTS[0]));
    assert!(long.ids.len() > short.ids.len());
    let alone_short = run(&m, std::slice::from_ref(&short), &dicts);
    let alone_long = run(&m, std::slice::from_ref(&long), &dicts);
    // The short text padded to the long one's length, in one batch with it.
    let padded = window(&m, TEXTS[2], long.ids.len());
    let together = run(&m, &[padded, long], &dicts);

    let n_short = alone_short.params.ce_positions_counted as f64;
    let n_long = alone_long.params.ce_positions_counted as f64;
    assert_eq!(
        together.params.ce_positions_counted as f64,
        n_short + n_long
    );
    let pooled = |f: fn(&EvalResults) -> f64| {
        (f(&alone_short) * n_short + f(&alone_long) * n_long) / (n_short + n_long)
    };
    type Metric = fn(&EvalResults) -> f64;
    let checks: [(&str, Metric); 3] = [
        ("ce_clean", |r| r.dictionaries[0].downstream.ce_clean),
        ("ce_spliced", |r| r.dictionaries[0].downstream.ce_spliced),
        ("kl", |r| r.dictionaries[0].downstream.kl),
    ];
    for (name, f) in checks {
        let (want, got) = (pooled(f), f(&together));
        assert!(
            (want - got).abs() <= 1e-5 * want.abs().max(1e-3),
            "{name}: padded batch {got}, unpadded {want}"
        );
    }
    assert!(alone_short.dictionaries[0].downstream.kl > 0.0);
}

#[test]
fn one_forward_serves_several_dictionaries_and_hooks() {
    let m = tiny_llama();
    let windows: Vec<Window> = TEXTS.iter().map(|t| window(&m, t, 48)).collect();
    let a = dictionary(&m, "a", "blocks.0.hook_resid_post", lossy(32, 64, 4));
    let b = dictionary(&m, "b", "blocks.0.hook_resid_post", lossy(32, 128, 8));
    let c = dictionary(&m, "c", "blocks.1.hook_mlp_out", lossy(32, 64, 4));
    let together = run(&m, &windows, &[a, b, c]);
    let alone = run(
        &m,
        &windows,
        &[dictionary(
            &m,
            "b",
            "blocks.0.hook_resid_post",
            lossy(32, 128, 8),
        )],
    );
    assert_eq!(together.hooks.len(), 2);
    assert_eq!(together.dictionaries[1], alone.dictionaries[0]);
    // MCS for every ordered pair of the same width.
    assert_eq!(together.mcs.len(), 6);
    let sparsity = &together.dictionaries[0].sparsity;
    assert!(
        (sparsity.l0 - 4.0).abs() < 1e-9,
        "TopK 4 gives L0 {}",
        sparsity.l0
    );
    assert_eq!(
        sparsity.dead_window_tokens,
        together.params.positions_evaluated
    );
}

#[test]
fn a_dictionary_of_the_wrong_width_is_refused() {
    let m = tiny_llama();
    let windows = [window(&m, TEXTS[0], 48)];
    let wrong = dictionary(&m, "wide", "blocks.1.mlp.hook_post", identity(32));
    let err = evaluate(
        &m.model,
        &windows,
        &[wrong],
        &EvalOptions::default(),
        &mut |_| {},
    )
    .expect_err("a 32-wide dictionary at a 64-wide hook")
    .to_string();
    assert!(
        err.contains("/dictionaries/wide") && err.contains("d_in is 32") && err.contains("64"),
        "{err}"
    );
}

#[test]
fn a_pruning_that_keeps_nothing_or_removes_nothing_is_refused() {
    let m = tiny_llama();
    let windows = [window(&m, TEXTS[0], 48)];
    for n in [0, 64] {
        let mut d = dictionary(&m, "p", "blocks.1.hook_resid_post", lossy(32, 64, 4));
        d.prune = Some(saelab_eval::Prune::Densest(n));
        let err = evaluate(
            &m.model,
            &windows,
            &[d],
            &EvalOptions::default(),
            &mut |_| {},
        )
        .expect_err("nothing to prune, or nothing left")
        .to_string();
        assert!(
            err.contains("/dictionaries/p") && err.contains(&format!("its {n} densest")),
            "{err}"
        );
    }
}
