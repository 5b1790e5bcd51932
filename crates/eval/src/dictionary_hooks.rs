//! Where a dictionary is read and spliced: the hook a caller names, else the one its
//! metadata names; a transcoder's input and output hooks.

use std::path::Path;

use anyhow::{bail, Context, Result};
use saelab_model::{HookPoint, ModelConfig};
use saelab_sae::contextual::window::AnyDictionary;
use saelab_sae::{Dictionary, Sae};

/// The hook `sae` reads and, for a transcoder, the hook it predicts. `override_hook` is the
/// caller's choice (`flag` names how it is given, for messages); `dir` is the dictionary's
/// folder, whose name places a sparsify transcoder that does not name its hooks.
pub fn dictionary_hooks(
    sae: &Sae,
    dir: Option<&Path>,
    override_hook: Option<HookPoint>,
    cfg: &ModelConfig,
    flag: &str,
) -> Result<(HookPoint, Option<HookPoint>)> {
    if sae.transcoder.is_some() {
        let (input, output) = transcoder_hooks(sae, dir, override_hook, cfg, flag)?;
        return Ok((input, Some(output)));
    }
    let hook = match (override_hook, sae.metadata().hook_name.as_deref()) {
        (Some(h), _) => h,
        (None, Some(name)) => HookPoint::parse(name, cfg).context("its hook_name")?,
        (None, None) => bail!("the dictionary does not name its hook; pass {flag}"),
    };
    Ok((hook, None))
}

/// [`dictionary_hooks`] for a per-position or a contextual dictionary. A contextual one
/// reads and writes one hook: `override_hook`, else its metadata's `hook_name`.
pub fn any_dictionary_hooks(
    d: &AnyDictionary,
    dir: Option<&Path>,
    override_hook: Option<HookPoint>,
    cfg: &ModelConfig,
    flag: &str,
) -> Result<(HookPoint, Option<HookPoint>)> {
    if let AnyDictionary::PerPosition(sae) = d {
        return dictionary_hooks(sae, dir, override_hook, cfg, flag);
    }
    let hook = match (override_hook, d.metadata().hook_name.as_deref()) {
        (Some(h), _) => h,
        (None, Some(name)) => HookPoint::parse(name, cfg).context("its hook_name")?,
        (None, None) => bail!("the dictionary does not name its hook; pass {flag}"),
    };
    Ok((hook, None))
}

/// A transcoder's input and output hooks: from its metadata (`hook_name`, `hook_name_out`),
/// or, for a sparsify transcoder in a folder named after the module it replaces
/// (`layers.N.mlp`), the MLP's input and output of block N.
fn transcoder_hooks(
    sae: &Sae,
    dir: Option<&Path>,
    override_hook: Option<HookPoint>,
    cfg: &ModelConfig,
    flag: &str,
) -> Result<(HookPoint, HookPoint)> {
    if override_hook.is_some() {
        bail!("a transcoder reads one hook and writes another, named in its metadata: {flag} does not apply");
    }
    let m = sae.metadata();
    let parse = |name: &str, key: &str| {
        HookPoint::parse(name, cfg).with_context(|| format!("its {key} `{name}`"))
    };
    if let (Some(input), Some(output)) = (m.hook_name.as_deref(), m.hook_name_out.as_deref()) {
        return Ok((parse(input, "hook_name")?, parse(output, "hook_name_out")?));
    }
    let folder = dir
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("");
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
