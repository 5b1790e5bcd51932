//! Impossible training configurations fail at construction, naming the field.

use saelab_sae::{L1Variant, TrainArchitecture, TrainConfig, Trainer};

fn error_of(cfg: TrainConfig) -> String {
    match Trainer::new(cfg) {
        Ok(_) => panic!("config accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn impossible_values_name_their_field() {
    let topk = |k| TrainConfig::new(TrainArchitecture::TopK { k }, 16, 64, 100);

    let msg = error_of(topk(65));
    assert!(
        msg.contains("`k`") && msg.contains("65") && msg.contains("d_sae"),
        "{msg}"
    );

    let msg = error_of(topk(0));
    assert!(msg.contains("`k`") && msg.contains("0"), "{msg}");

    let msg = error_of(TrainConfig::new(
        TrainArchitecture::BatchTopK { k: 100 },
        16,
        64,
        100,
    ));
    assert!(msg.contains("`k`"), "{msg}");

    let mut cfg = topk(4);
    cfg.lr = -1e-3;
    let msg = error_of(cfg);
    assert!(msg.contains("`lr`") && msg.contains("-0.001"), "{msg}");

    let msg = error_of(TrainConfig::new(
        TrainArchitecture::ReluL1 {
            variant: L1Variant::Standard,
        },
        0,
        64,
        100,
    ));
    assert!(msg.contains("`d_in`"), "{msg}");

    let mut cfg = topk(4);
    cfg.adam_beta2 = 1.0;
    assert!(error_of(cfg).contains("`adam_beta2`"));

    let mut cfg = TrainConfig::new(
        TrainArchitecture::ReluL1 {
            variant: L1Variant::April,
        },
        16,
        64,
        100,
    );
    cfg.l1_coefficient = f32::NAN;
    assert!(error_of(cfg).contains("`l1_coefficient`"));

    let jumprelu = || TrainConfig::new(TrainArchitecture::JumpRelu, 16, 64, 100);
    let mut cfg = jumprelu();
    cfg.jumprelu_bandwidth = 0.0;
    assert!(error_of(cfg).contains("`jumprelu_bandwidth`"));
    let mut cfg = jumprelu();
    cfg.jumprelu_init_threshold = -0.1;
    assert!(error_of(cfg).contains("`jumprelu_init_threshold`"));
    let mut cfg = jumprelu();
    cfg.l0_coefficient = -1.0;
    assert!(error_of(cfg).contains("`l0_coefficient`"));
    let mut cfg = topk(4);
    cfg.ghost_grads = true;
    let msg = error_of(cfg);
    assert!(
        msg.contains("`ghost_grads`") && msg.contains("ReLU-L1"),
        "{msg}"
    );

    assert!(Trainer::new(topk(4)).is_ok());
    assert!(Trainer::new(jumprelu()).is_ok());
    assert!(Trainer::new(TrainConfig::new(TrainArchitecture::Gated, 16, 64, 100)).is_ok());
}

#[test]
fn batches_that_do_not_fit_are_refused() {
    let mut t =
        Trainer::new(TrainConfig::new(TrainArchitecture::TopK { k: 2 }, 4, 8, 10)).expect("config");
    let msg = t
        .step(&[1.0; 6])
        .expect_err("6 is not a multiple of 4")
        .to_string();
    assert!(msg.contains("d_in = 4"), "{msg}");
    let mut bad = vec![1.0f32; 8];
    bad[5] = f32::NAN;
    let msg = t.step(&bad).expect_err("NaN").to_string();
    assert!(msg.contains("row 1") && msg.contains("NaN"), "{msg}");
    assert_eq!(t.steps(), 0, "refused batches take no step");
}

/// A width of 10^12 used to abort allocating the weights; every width past the stated bounds
/// is refused before anything is allocated.
#[test]
fn huge_widths_are_refused_before_allocating() {
    let cases = [
        (16, 1usize << 29),
        (16, 1_000_000_000_000),
        (16, usize::MAX),
        (1 << 20, 1 << 13),
        (usize::MAX, 64),
        (usize::MAX / 2, 3),
    ];
    for (d_in, d_sae) in cases {
        for arch in [TrainArchitecture::TopK { k: 1 }, TrainArchitecture::Gated] {
            let msg = error_of(TrainConfig::new(arch, d_in, d_sae, 100));
            assert!(
                msg.contains("d_sae") && msg.contains("bound"),
                "d_in {d_in}, d_sae {d_sae}: {msg}"
            );
        }
    }
}

#[test]
fn a_target_l0_is_refused_where_it_cannot_apply() {
    let mut cfg = TrainConfig::new(TrainArchitecture::TopK { k: 4 }, 16, 64, 100);
    cfg.target_l0 = Some(4.0);
    let msg = error_of(cfg);
    assert!(msg.contains("`target_l0`") && msg.contains("TopK"), "{msg}");
    let relu = TrainArchitecture::ReluL1 {
        variant: L1Variant::Standard,
    };
    for bad in [0.0, -1.0, 65.0, f64::NAN] {
        let mut cfg = TrainConfig::new(relu, 16, 64, 100);
        cfg.target_l0 = Some(bad);
        let msg = error_of(cfg);
        assert!(
            msg.contains("`target_l0`") && msg.contains("d_sae"),
            "{bad}: {msg}"
        );
    }
    let mut cfg = TrainConfig::new(relu, 16, 64, 100);
    cfg.target_l0 = Some(8.0);
    cfg.l1_coefficient = 0.0;
    let msg = error_of(cfg);
    assert!(
        msg.contains("`target_l0`") && msg.contains("starting"),
        "{msg}"
    );
    let mut cfg = TrainConfig::new(relu, 16, 64, 100);
    cfg.target_l0 = Some(8.0);
    Trainer::new(cfg).expect("a target within the width is accepted");
}

#[test]
fn matryoshka_widths_are_nested_prefixes_of_the_dictionary() {
    let matryoshka = TrainArchitecture::MatryoshkaBatchTopK { k: 4 };
    let cfg = TrainConfig::new(matryoshka, 16, 64, 100);
    assert_eq!(cfg.matryoshka_widths, [2, 6, 14, 30, 64]);
    assert_eq!(
        TrainConfig::new(matryoshka, 16, 10, 100).matryoshka_widths,
        [2, 4, 10],
        "groups too small to hold a latent are dropped"
    );
    Trainer::new(cfg.clone()).expect("the default widths are valid");
    for widths in [
        vec![],
        vec![8, 32],
        vec![0, 64],
        vec![8, 8, 64],
        vec![32, 8, 64],
    ] {
        let mut bad = cfg.clone();
        bad.matryoshka_widths = widths.clone();
        let msg = error_of(bad);
        assert!(msg.contains("`matryoshka_widths`"), "{widths:?}: {msg}");
    }
    let mut topk = TrainConfig::new(TrainArchitecture::TopK { k: 4 }, 16, 64, 100);
    topk.matryoshka_widths = vec![8, 64];
    assert!(error_of(topk).contains("`matryoshka_widths`"));
}
