//! Small numeric kernels written so the compiler vectorises them, compiled twice: once for
//! AVX2+FMA (chosen at run time when the CPU has them) and once for the baseline target.

/// A piece of work compiled twice; `run` must be `#[inline(always)]` so that it takes on
/// the target features of the function that calls it.
pub trait Kernel {
    type Output;
    fn run<const FMA: bool>(self) -> Self::Output;
}

/// Runs `k` compiled for AVX2+FMA when the CPU has them, else for the baseline target.
pub fn dispatch<K: Kernel>(k: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fast<K: Kernel>(k: K) -> K::Output {
            k.run::<true>()
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features `fast` is compiled with.
            return unsafe { fast(k) };
        }
    }
    k.run::<false>()
}

/// `a * b + c`, fused when the kernel runs with FMA.
#[inline(always)]
pub fn mul_add<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// e^x with a relative error of about 2e-7 over the f32 range, branch-free so loops over it
/// vectorise: Cody-Waite reduction by ln 2, then a degree-6 minimax polynomial (the classic
/// Cephes `expf` coefficients). Inputs are clamped to [-87.3, 88.3].
#[inline(always)]
pub fn exp<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.3);
    let n = mul_add::<FMA>(x, LOG2E, 0.5).floor();
    let r = mul_add::<FMA>(-n, LN2_LO, mul_add::<FMA>(-n, LN2_HI, x));
    let mut p = 1.987_569_1e-4;
    p = mul_add::<FMA>(p, r, 1.398_199_9e-3);
    p = mul_add::<FMA>(p, r, 8.333_452e-3);
    p = mul_add::<FMA>(p, r, 4.166_579_6e-2);
    p = mul_add::<FMA>(p, r, 1.666_666_5e-1);
    p = mul_add::<FMA>(p, r, 0.5);
    let y = mul_add::<FMA>(p, r * r, r) + 1.0;
    y * f32::from_bits((((n as i32) + 127) as u32) << 23)
}

/// Sum with eight independent accumulators, so that it vectorises.
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Largest value (−∞ for an empty slice), eight lanes at a time.
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for c in chunks {
        for i in 0..8 {
            acc[i] = acc[i].max(c[i]);
        }
    }
    acc.iter().fold(tail, |a, &b| a.max(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_a_few_ulp_of_libm() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            for got in [exp::<false>(x), exp::<true>(x)] {
                worst = worst.max(((got as f64 - want) / want).abs());
            }
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp::<false>(-1000.0), exp::<false>(-87.3));
        assert!(exp::<false>(1000.0).is_finite());
    }

    #[test]
    fn sum_and_max_match_plain_folds() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.3).sin()).collect();
        let want: f32 = x.iter().map(|v| *v as f64).sum::<f64>() as f32;
        assert!((sum(&x) - want).abs() < 1e-5);
        assert_eq!(max(&x), x.iter().cloned().fold(f32::MIN, f32::max));
        assert_eq!(max(&[]), f32::NEG_INFINITY);
    }
}
