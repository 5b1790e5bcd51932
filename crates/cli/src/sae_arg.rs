//! `--sae [NAME=]DIR`: a dictionary folder (SAELens, dictionary_learning or sparsify; carry
//! and temporal ones where a command runs whole windows), optionally named, at the hook
//! `--hook` gives or its own metadata names.

use std::path::{Path, PathBuf};

use anyhow::bail;
use anyhow::{Context, Result};
use saelab_eval::dictionary_hooks::any_dictionary_hooks;
use saelab_model::{HookPoint, ModelConfig};
use saelab_sae::contextual::window::AnyDictionary;
use saelab_sae::Sae;

use saelab_sae::train::spec::check_name;

/// A loaded `--sae`: a per-position dictionary, or (`AnyDictionary`) either kind.
pub struct NamedDictionary<D = Sae> {
    pub name: String,
    pub path: String,
    /// The hook the dictionary reads.
    pub hook: HookPoint,
    /// A transcoder's output hook, whose activation it predicts.
    pub out_hook: Option<HookPoint>,
    pub sae: D,
}

/// Every `--sae` spec, at `--hook` (parsed here) or each dictionary's own hook.
pub fn load_dictionaries(
    specs: &[String],
    hook: Option<&str>,
    cfg: &ModelConfig,
) -> Result<Vec<NamedDictionary>> {
    let override_hook = hook
        .map(|h| HookPoint::parse(h, cfg).context("--hook"))
        .transpose()?;
    specs
        .iter()
        .map(|spec| load_dictionary(spec, override_hook, cfg))
        .collect()
}

/// Every `--sae` spec, per-position or contextual (carry, temporal), for the commands that
/// run dictionaries over whole windows.
pub fn load_any_dictionaries(
    specs: &[String],
    hook: Option<&str>,
    cfg: &ModelConfig,
) -> Result<Vec<NamedDictionary<AnyDictionary>>> {
    let override_hook = hook
        .map(|h| HookPoint::parse(h, cfg).context("--hook"))
        .transpose()?;
    specs
        .iter()
        .map(|spec| load_any_dictionary(spec, override_hook, cfg))
        .collect()
}

/// A per-position dictionary; a contextual folder is refused, naming the commands that
/// take one.
pub fn load_dictionary(
    spec: &str,
    override_hook: Option<HookPoint>,
    cfg: &ModelConfig,
) -> Result<NamedDictionary> {
    let d = load_any_dictionary(spec, override_hook, cfg)?;
    match d.sae {
        AnyDictionary::PerPosition(sae) => Ok(NamedDictionary {
            name: d.name,
            path: d.path,
            hook: d.hook,
            out_hook: d.out_hook,
            sae,
        }),
        AnyDictionary::Contextual(c) => bail!(
            "--sae {spec}: a {} dictionary, whose codes carry along the window; this command \
             takes per-position dictionaries (saelab eval and saelab features take contextual \
             ones)",
            c.architecture()
        ),
    }
}

pub fn load_any_dictionary(
    spec: &str,
    override_hook: Option<HookPoint>,
    cfg: &ModelConfig,
) -> Result<NamedDictionary<AnyDictionary>> {
    let (name, dir) = match spec.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !Path::new(spec).exists() => {
            check_name(name).with_context(|| format!("--sae {spec}: NAME"))?;
            (name.to_string(), PathBuf::from(dir))
        }
        _ => {
            let dir = PathBuf::from(spec);
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| spec.to_string());
            (name, dir)
        }
    };
    let sae = AnyDictionary::load(&dir).with_context(|| format!("--sae {spec}"))?;
    let (hook, out_hook) = any_dictionary_hooks(&sae, Some(&dir), override_hook, cfg, "--hook")
        .with_context(|| format!("--sae {spec}"))?;
    Ok(NamedDictionary {
        name,
        path: dir.display().to_string(),
        hook,
        out_hook,
        sae,
    })
}
