//! The browser's live computations on the tiny Llama fixture: "what fires here" against a
//! direct encode of the hook values, and steering's identities (nothing added changes
//! nothing; a large push changes the text; a deadline stops it).

mod common;

use std::time::{Duration, Instant};

use saelab_interp::fires::{context_ids, what_fires, FiresLimits, HookedDictionary};
use saelab_interp::steer::{steer, SteerMode, SteerRequest, Stop};
use saelab_model::{Batch, HookPoint, Hooks, LoadedModel};
use saelab_sae::{Activation, Dictionary, Sae, SaeWeights};

fn tiny() -> LoadedModel {
    common::tiny_llama()
}

fn random_topk(d_in: usize, d_sae: usize, k: usize, seed: u64) -> Sae {
    let w = SaeWeights::init_tied(d_in, d_sae, 1.0, seed);
    Sae::new(w, Activation::TopK { k }).unwrap()
}

fn hook(m: &LoadedModel, name: &str) -> HookPoint {
    HookPoint::parse(name, &m.model.cfg).unwrap()
}

const TEXT: &str = "The cat sat on the mat. The dog ran.";

#[test]
fn what_fires_matches_a_direct_encode_of_each_hook() {
    let m = tiny();
    let d = m.model.cfg.d_model;
    let (sae0, sae1) = (random_topk(d, 48, 4, 1), random_topk(d, 64, 6, 2));
    let (h0, h1) = (
        hook(&m, "blocks.0.hook_resid_post"),
        hook(&m, "blocks.1.hook_mlp_out"),
    );
    let dicts = [
        HookedDictionary {
            name: "a",
            hook: h0,
            sae: &sae0,
        },
        HookedDictionary {
            name: "b",
            hook: h1,
            sae: &sae1,
        },
    ];
    let limits = FiresLimits {
        max_tokens: 64,
        top_n: 3,
    };
    let tokens = what_fires(&m, TEXT, &dicts, limits).unwrap();

    let ids = context_ids(&m.tokenizer, TEXT).unwrap();
    assert_eq!(tokens.iter().map(|t| t.id).collect::<Vec<_>>(), ids);
    // Position 0 is the corpus windows' start token, <|endoftext|> in this vocabulary.
    assert_eq!(ids[0], 0);
    assert!(tokens[0].special);
    assert_eq!(tokens[1].text, m.tokenizer.decode(&[ids[1]]).unwrap());

    let out = m
        .model
        .forward(&Batch::single(&ids), &mut Hooks::capture([h0, h1]))
        .unwrap();
    for (k, (h, sae)) in [(h0, &sae0), (h1, &sae1)].into_iter().enumerate() {
        let x = out
            .get(h)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let f = sae.encode(&x).unwrap();
        for (t, token) in tokens.iter().enumerate() {
            let (idx, val) = f.row(t);
            let mut expected: Vec<(u32, f32)> = idx
                .iter()
                .copied()
                .zip(val.iter().copied())
                .filter(|e| e.1 > 0.0)
                .collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1));
            expected.truncate(3);
            assert_eq!(token.top[k], expected, "dictionary {k}, token {t}");
        }
    }
    assert!(tokens.iter().any(|t| !t.top[0].is_empty()));
}

#[test]
fn what_fires_refuses_a_text_beyond_the_limit_and_names_it() {
    let m = tiny();
    let sae = random_topk(m.model.cfg.d_model, 16, 2, 3);
    let dicts = [HookedDictionary {
        name: "a",
        hook: hook(&m, "blocks.0.hook_resid_post"),
        sae: &sae,
    }];
    let limits = FiresLimits {
        max_tokens: 5,
        top_n: 3,
    };
    let err = what_fires(&m, TEXT, &dicts, limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("limit is 5 tokens"), "{err}");
    let err = what_fires(&m, "  ", &dicts, limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn what_fires_refuses_a_dictionary_of_another_width() {
    let m = tiny();
    let sae = random_topk(m.model.cfg.d_model + 1, 16, 2, 3);
    let dicts = [HookedDictionary {
        name: "wide",
        hook: hook(&m, "blocks.0.hook_resid_post"),
        sae: &sae,
    }];
    let limits = FiresLimits {
        max_tokens: 64,
        top_n: 3,
    };
    let err = what_fires(&m, TEXT, &dicts, limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("wide") && err.contains("33"), "{err}");
}

fn request<'a>(m: &LoadedModel, sae: &'a Sae, feature: usize, mode: SteerMode) -> SteerRequest<'a> {
    SteerRequest {
        hook: hook(m, "blocks.0.hook_resid_post"),
        out_hook: None,
        sae,
        feature,
        mode,
        prompt: "The cat sat on",
        max_new: 12,
        deadline: Instant::now() + Duration::from_secs(60),
    }
}

#[test]
fn steering_with_coefficient_zero_gives_exactly_the_unsteered_text() {
    let m = tiny();
    let sae = random_topk(m.model.cfg.d_model, 32, 4, 5);
    let out = steer(
        &m,
        &request(&m, &sae, 7, SteerMode::Add { coefficient: 0.0 }),
    )
    .unwrap();
    assert!(!out.unsteered.ids.is_empty());
    assert_eq!(out.steered, out.unsteered);
    // The unsteered continuation is the model's own greedy decoding of the same prompt.
    let plain = m
        .model
        .generate_greedy(&out.prompt_ids, 12, m.tokenizer.eos_id())
        .unwrap();
    assert_eq!(out.unsteered.ids, plain);
}

#[test]
fn steering_with_a_huge_coefficient_changes_the_text() {
    let m = tiny();
    let sae = random_topk(m.model.cfg.d_model, 32, 4, 5);
    let out = steer(
        &m,
        &request(&m, &sae, 7, SteerMode::Add { coefficient: 500.0 }),
    )
    .unwrap();
    assert_ne!(out.steered.ids, out.unsteered.ids);
    let clamped = steer(&m, &request(&m, &sae, 7, SteerMode::Clamp { value: 500.0 })).unwrap();
    assert_ne!(clamped.steered.ids, clamped.unsteered.ids);
}

#[test]
fn clamping_a_feature_to_its_current_value_changes_nothing() {
    let m = tiny();
    let sae = random_topk(m.model.cfg.d_model, 32, 2, 5);
    let h = hook(&m, "blocks.0.hook_resid_post");
    // A feature that never fires on the unsteered text: its current value is 0 everywhere.
    let plain = steer(
        &m,
        &request(&m, &sae, 0, SteerMode::Add { coefficient: 0.0 }),
    )
    .unwrap();
    let f = sae.encode(&values(&m, &unsteered_text(&plain), h)).unwrap();
    let silent = (0..32u32)
        .find(|i| !f.idx.contains(i))
        .expect("a TopK-2 dictionary of 32 latents leaves some silent on a short text");
    let out = steer(
        &m,
        &request(&m, &sae, silent as usize, SteerMode::Clamp { value: 0.0 }),
    )
    .unwrap();
    assert_eq!(out.steered, out.unsteered);
}

#[test]
fn steering_stops_at_the_deadline_and_says_so() {
    let m = tiny();
    let sae = random_topk(m.model.cfg.d_model, 32, 4, 5);
    let mut r = request(&m, &sae, 7, SteerMode::Add { coefficient: 1.0 });
    r.deadline = Instant::now();
    let out = steer(&m, &r).unwrap();
    assert_eq!(out.steered.stop, Stop::Deadline);
    assert_eq!(out.unsteered.stop, Stop::Deadline);
    assert!(out.steered.ids.is_empty());
}

#[test]
fn steering_refuses_what_does_not_fit() {
    let m = tiny();
    let sae = random_topk(m.model.cfg.d_model, 32, 4, 5);
    let mut r = request(&m, &sae, 32, SteerMode::Add { coefficient: 1.0 });
    assert!(steer(&m, &r).unwrap_err().to_string().contains("32"));
    r.feature = 0;
    r.max_new = 64;
    let err = steer(&m, &r).unwrap_err().to_string();
    assert!(err.contains("context of 64"), "{err}");
    r.max_new = 4;
    r.mode = SteerMode::Add {
        coefficient: f32::NAN,
    };
    assert!(steer(&m, &r).is_err());
}

/// A transcoder reading `blocks.0.hook_resid_post` and predicting `blocks.1.hook_mlp_out`,
/// with the weights of `random_topk`.
fn transcoder(m: &LoadedModel, k: usize) -> Sae {
    let mut sae = random_topk(m.model.cfg.d_model, 32, k, 5);
    sae.apply_b_dec_to_input = false;
    sae.transcoder = Some(saelab_sae::Transcoder { skip: None });
    sae.metadata.hook_name_out = Some("blocks.1.hook_mlp_out".into());
    sae
}

/// The prompt's ids and the unsteered continuation's.
fn unsteered_text(s: &saelab_interp::steer::Steered) -> Vec<u32> {
    s.prompt_ids
        .iter()
        .chain(&s.unsteered.ids)
        .copied()
        .collect()
}

/// Values of `point` on `ids` (no edit).
fn values(m: &LoadedModel, ids: &[u32], point: HookPoint) -> Vec<f32> {
    let out = m
        .model
        .forward(&Batch::single(ids), &mut Hooks::capture([point]))
        .unwrap();
    out.get(point)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// Adding a transcoder's direction is adding it at its output hook; clamping reads the
/// feature at its input hook: for a feature silent there (though it would fire on the
/// output hook's values), clamping to v is adding v.
#[test]
fn a_transcoder_is_steered_at_its_output_hook_from_its_input_hook() {
    let m = tiny();
    let (input, output) = (
        hook(&m, "blocks.0.hook_resid_post"),
        hook(&m, "blocks.1.hook_mlp_out"),
    );
    let tc = transcoder(&m, 2);
    let plain_sae = random_topk(m.model.cfg.d_model, 32, 2, 5);
    let at = |sae: &Sae, out_hook: Option<HookPoint>, hook: HookPoint, feature, mode| {
        let mut r = request(&m, sae, feature, mode);
        r.hook = hook;
        r.out_hook = out_hook;
        steer(&m, &r).unwrap()
    };
    let add = SteerMode::Add { coefficient: 40.0 };
    let via_transcoder = at(&tc, Some(output), input, 7, add);
    let at_output = at(&plain_sae, None, output, 7, add);
    assert_eq!(via_transcoder.steered, at_output.steered);
    assert_ne!(via_transcoder.steered, via_transcoder.unsteered);

    // Clamping to 0 a feature silent at the input hook changes nothing, though on the output
    // hook's values it fires (strongly: the encoder is scaled up, which keeps TopK's choice),
    // so reading the feature at the wrong hook would push the text away.
    let mut strong = tc.clone();
    strong.weights.w_enc_t.iter_mut().for_each(|w| *w *= 1000.0);
    strong.weights.b_enc.iter_mut().for_each(|b| *b = 0.0);
    let plain = at(
        &strong,
        Some(output),
        input,
        0,
        SteerMode::Add { coefficient: 0.0 },
    );
    let all = unsteered_text(&plain);
    let (f_in, f_out) = (
        strong.encode(&values(&m, &all, input)).unwrap(),
        strong.encode(&values(&m, &all, output)).unwrap(),
    );
    let j = (0..32u32)
        .find(|j| !f_in.idx.contains(j) && f_out.idx.contains(j))
        .expect("a feature silent at the input hook that fires at the output hook");
    let clamped = at(
        &strong,
        Some(output),
        input,
        j as usize,
        SteerMode::Clamp { value: 0.0 },
    );
    assert_eq!(clamped.steered, clamped.unsteered);

    // The output hook is required, after the input hook.
    let mut r = request(&m, &tc, 7, add);
    assert!(steer(&m, &r)
        .unwrap_err()
        .to_string()
        .contains("output hook"));
    r.out_hook = Some(hook(&m, "blocks.0.hook_resid_pre"));
    assert!(steer(&m, &r)
        .unwrap_err()
        .to_string()
        .contains("after its input hook"));
}
