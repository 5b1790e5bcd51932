//! `--sae [NAME=]DIR`: a dictionary folder (SAELens, dictionary_learning or sparsify),
//! optionally named, at the hook `--hook` gives or its own metadata names.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use saelab_model::{HookPoint, ModelConfig};
use saelab_sae::{Dictionary, Sae};

use saelab_sae::train::spec::check_name;

pub struct NamedDictionary {
    pub name: String,
    pub path: String,
    /// The hook the dictionary reads.
    pub hook: HookPoint,
    /// A transcoder's output hook, whose activation it predicts.
    pub out_hook: Option<HookPoint>,
    pub sae: Sae,
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

pub fn load_dictionary(
    spec: &str,
    override_hook: Option<HookPoint>,
    cfg: &ModelConfig,
) -> Result<NamedDictionary> {
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
    let sae = saelab_sae::format::load_any(&dir).with_context(|| format!("--sae {spec}"))?;
    if sae.transcoder.is_some() {
        let (hook, out_hook) = transcoder_hooks(&sae, &dir, override_hook, cfg)
            .with_context(|| format!("--sae {spec}"))?;
        return Ok(NamedDictionary {
            name,
            path: dir.display().to_string(),
            hook,
            out_hook: Some(out_hook),
            sae,
        });
    }
    let hook = match (override_hook, sae.metadata().hook_name.as_deref()) {
        (Some(h), _) => h,
        (None, Some(name)) => {
            HookPoint::parse(name, cfg).with_context(|| format!("--sae {spec}: its hook_name"))?
        }
        (None, None) => bail!("--sae {spec}: the dictionary does not name its hook; pass --hook"),
    };
    Ok(NamedDictionary {
        name,
        path: dir.display().to_string(),
        hook,
        out_hook: None,
        sae,
    })
}

/// A transcoder's input and output hooks: from its metadata (`hook_name`, `hook_name_out`),
/// or, for a sparsify transcoder in a folder named after the module it replaces
/// (`layers.N.mlp`), the MLP's input and output of block N.
fn transcoder_hooks(
    sae: &Sae,
    dir: &Path,
    override_hook: Option<HookPoint>,
    cfg: &ModelConfig,
) -> Result<(HookPoint, HookPoint)> {
    if override_hook.is_some() {
        bail!("a transcoder reads one hook and writes another, named in its metadata: --hook does not apply");
    }
    let m = sae.metadata();
    let parse = |name: &str, key: &str| {
        HookPoint::parse(name, cfg).with_context(|| format!("its {key} `{name}`"))
    };
    if let (Some(input), Some(output)) = (m.hook_name.as_deref(), m.hook_name_out.as_deref()) {
        return Ok((parse(input, "hook_name")?, parse(output, "hook_name_out")?));
    }
    let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let layer = folder
        .strip_prefix("layers.")
        .and_then(|rest| rest.strip_suffix(".mlp"))
        .and_then(|n| n.parse::<usize>().ok());
    match layer {
        Some(layer) => Ok((
            parse(&format!("blocks.{layer}.ln2.hook_normalized"), "MLP input")?,
            parse(&format!("blocks.{layer}.hook_mlp_out"), "MLP output")?,
        )),
        None => bail!(
            "the transcoder does not name its hooks (metadata `hook_name` and `hook_name_out`), \
             and its folder is not named after an MLP (`layers.N.mlp`)"
        ),
    }
}
