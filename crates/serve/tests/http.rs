//! The browser over HTTP on a realistic database: every page answers with the database's
//! numbers, markup in corpus text stays text, no request reads another file, limits and
//! malformed requests get a 4xx with a message, ablations are computed once and stored.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::OnceLock;

use common::fixture::{build, Spec, IMG, SCRIPT};
use common::{data_values, example_spans, examples, read_only, start, Running};
use saelab_interp::fires::{what_fires, FiresLimits, HookedDictionary};
use saelab_model::HookPoint;
use saelab_serve::client::Connection;
use saelab_serve::Options;

struct Shared {
    db: PathBuf,
    server: Running,
    _dir: tempfile::TempDir,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let fixture = build(dir.path(), &Spec::small());
        let server = start(&fixture.db);
        Shared {
            db: fixture.db,
            server,
            _dir: dir,
        }
    })
}

const D0: &str = "resid0-topk";

#[test]
fn the_index_lists_the_dictionaries_and_the_meta_table() {
    let s = shared();
    let html = s.server.page("/");
    assert!(html.contains("href=\"/d/resid0-topk\""));
    assert!(html.contains("href=\"/d/resid1-topk\""));
    assert!(html.contains("blocks.1.hook_resid_post"));
    let conn = read_only(&s.db);
    let positions: i64 = conn
        .query_row("SELECT positions FROM dictionaries WHERE id = 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        html.contains(&format!(">{positions}<")),
        "positions {positions}"
    );
    // The corpus name holds markup: it is shown escaped, never as a tag.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains(SCRIPT));
}

#[test]
fn the_dictionary_page_shows_its_histogram_and_sorts_its_table() {
    let s = shared();
    let conn = read_only(&s.db);
    let html = s.server.page(&format!("/d/{D0}"));
    assert!(html.contains("<svg") && html.contains("class=\"plot density\""));
    let dead: i64 = conn
        .query_row(
            "SELECT count(*) FROM features WHERE dict = 0 AND density = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let live: i64 = conn
        .query_row(
            "SELECT count(*) FROM features WHERE dict = 0 AND density > 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(html.contains(&format!("{dead} dead features are not in the plot")));
    let bars: u64 = html
        .match_indices("<rect class=\"bar\"")
        .map(|(i, _)| {
            let t = &html[i..];
            let open = t.find("<title>").unwrap() + 7;
            let title = &t[open..open + t[open..].find("</title>").unwrap()];
            title
                .rsplit(": ")
                .next()
                .unwrap()
                .trim_end_matches(" features")
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        bars, live as u64,
        "the density bars count every live feature"
    );
    // 48 features on one page, each linked once from the table.
    assert_eq!(
        html.matches("<td class=\"num\"><a href=\"/d/resid0-topk/f/")
            .count(),
        48
    );

    let by_max = s.server.page(&format!("/d/{D0}?sort=max&order=desc"));
    let top: i64 = conn
        .query_row(
            "SELECT feature FROM features WHERE dict = 0 ORDER BY max_act DESC, feature LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let first = by_max
        .find("<td class=\"num\"><a href=\"/d/resid0-topk/f/")
        .unwrap();
    assert!(by_max[first..].starts_with(&format!(
        "<td class=\"num\"><a href=\"/d/resid0-topk/f/{top}\""
    )));
    // Persistence: the feature likeliest to stay on first; features too rare to say last.
    let by_persistence = s
        .server
        .page(&format!("/d/{D0}?sort=persistence&order=desc"));
    let (top, p): (i64, f64) = conn
        .query_row(
            "SELECT feature, p_stay FROM features WHERE dict = 0 AND p_stay IS NOT NULL \
             ORDER BY p_stay DESC, feature LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let first = by_persistence
        .find("<td class=\"num\"><a href=\"/d/resid0-topk/f/")
        .unwrap();
    let row = &by_persistence[first..];
    assert!(row.starts_with(&format!(
        "<td class=\"num\"><a href=\"/d/resid0-topk/f/{top}\""
    )));
    assert!(row[..row.find("</tr>").unwrap()].contains(&format!("{p:.2}")));
    assert!(by_persistence.contains("P(stay) ▼"));
    // Ascending, the least persistent feature first: those too rare to say stay last.
    let ascending = s
        .server
        .page(&format!("/d/{D0}?sort=persistence&order=asc"));
    let least: i64 = conn
        .query_row(
            "SELECT feature FROM features WHERE dict = 0 AND p_stay IS NOT NULL \
             ORDER BY p_stay ASC, feature LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let first = ascending
        .find("<td class=\"num\"><a href=\"/d/resid0-topk/f/")
        .unwrap();
    assert!(ascending[first..].starts_with(&format!(
        "<td class=\"num\"><a href=\"/d/resid0-topk/f/{least}\""
    )));
    let by_index = s.server.page(&format!("/d/{D0}?sort=index&order=desc"));
    let first = by_index
        .find("<td class=\"num\"><a href=\"/d/resid0-topk/f/")
        .unwrap();
    assert!(by_index[first..].starts_with("<td class=\"num\"><a href=\"/d/resid0-topk/f/47\""));
    assert_eq!(s.server.get(&format!("/d/{D0}?page=2")).status, 404);
    assert_eq!(s.server.get(&format!("/d/{D0}?sort=weird")).status, 400);
}

#[test]
fn the_feature_page_and_its_json_hold_the_database_rows() {
    let s = shared();
    let conn = read_only(&s.db);
    let feature: i64 = conn
        .query_row(
            "SELECT feature FROM features WHERE dict = 0 AND count > 2 ORDER BY feature LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let (count, max_act, mean_run): (i64, f64, f64) = conn
        .query_row(
            "SELECT count, max_act, mean_run FROM features WHERE dict = 0 AND feature = ?1",
            [feature],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&s.server.page(&format!("/api/d/{D0}/f/{feature}"))).unwrap();
    assert_eq!(json["stats"]["count"], count);
    assert_eq!(json["stats"]["max_act"].as_f64().unwrap(), max_act);
    assert_eq!(json["stats"]["mean_run"].as_f64().unwrap(), mean_run);
    let tops = examples(
        &conn,
        &format!("e.dict = 0 AND e.feature = {feature} AND e.kind = 'top'"),
    );
    let api_tops = json["top"].as_array().unwrap();
    assert_eq!(api_tops.len(), tops.len());
    assert_eq!(
        api_tops[0]["value"].as_f64().unwrap() as f32,
        tops[0].value as f32
    );
    let quantile_count: i64 = conn
        .query_row(
            "SELECT sum(count) FROM quantile_bins WHERE dict = 0 AND feature = ?1",
            [feature],
            |r| r.get(0),
        )
        .unwrap();
    let api_sum: i64 = json["quantiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_i64().unwrap())
        .sum();
    assert_eq!(api_sum, quantile_count);

    let html = s.server.page(&format!("/d/{D0}/f/{feature}"));
    assert!(html.contains(&format!(
        "<b>{mean_run:.1}</b><span>mean run (tokens)</span>"
    )));
    for e in &tops {
        let spans = example_spans(&html, e.id);
        let texts: Vec<&str> = spans.iter().map(|s| s.0.as_str()).collect();
        let values: Vec<f32> = spans.iter().map(|s| s.1).collect();
        assert_eq!(
            texts,
            e.texts.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert_eq!(values, e.acts);
    }
    assert!(html.contains("class=\"plot activations\""));
    assert!(html.contains("direct path"), "the lens sentence is shown");
    assert!(html.contains("1 token is left out of every lens"));
    // Nearest features link to the other dictionary's pages.
    assert!(html.contains("href=\"/d/resid1-topk/f/"));
    assert!(data_values(&html).len() >= tops.iter().map(|e| e.acts.len()).sum::<usize>());
}

#[test]
fn markup_in_tokens_is_escaped_everywhere() {
    let s = shared();
    // Feature 0's lens promotes the <script> token first.
    let html = s.server.page(&format!("/d/{D0}/f/0"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script"));
    // Some example shows the markup window.
    let conn = read_only(&s.db);
    let with_img = examples(&conn, "e.dict = 0 AND e.kind = 'top'")
        .into_iter()
        .find(|e| e.texts.iter().any(|t| t == IMG))
        .expect("an example's context holds the <img> token");
    let html = s.server.page(&format!("/d/{D0}/f/{}", with_img.feature));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!html.contains("<img"));
    assert!(!html.contains("<script"));
    let search = s.server.page(&format!(
        "/d/{D0}/search?token=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
    ));
    assert!(
        search.contains("href=\"/d/resid0-topk/f/0\""),
        "the lens match is found"
    );
    assert!(!search.contains("<script"));
}

#[test]
fn the_token_search_says_why_each_feature_matched() {
    let s = shared();
    let conn = read_only(&s.db);
    let cat: u32 = conn
        .query_row(
            "SELECT id FROM tokens WHERE lower(trim(text)) = 'the' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let expected: Vec<i64> = conn
        .prepare(
            "SELECT DISTINCT feature FROM (SELECT feature FROM lens WHERE dict = 0 AND token IN \
             (SELECT id FROM tokens WHERE lower(trim(text)) = 'the') UNION SELECT feature FROM \
             examples WHERE dict = 0 AND kind = 'top' AND token IN (SELECT id FROM tokens WHERE \
             lower(trim(text)) = 'the')) ORDER BY feature",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        !expected.is_empty(),
        "token {cat} is in some lens or example"
    );
    for query in ["The", "%20the", "THE%20"] {
        let html = s.server.page(&format!("/d/{D0}/search?token={query}"));
        let rows = html
            .matches("<tr><td class=\"num\"><a href=\"/d/resid0-topk/f/")
            .count();
        assert_eq!(rows, expected.len(), "{query}");
        assert!(html.contains("top example") || html.contains("the logit lens"));
    }
    let none = s.server.page(&format!("/d/{D0}/search?token=zzzzqqq"));
    assert!(none.contains("No vocabulary token reads"));
}

#[test]
fn no_request_reads_a_file() {
    let s = shared();
    for target in [
        "/d/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/d/x/f/..%2f..%2fetc%2fpasswd",
        "/d/resid0-topk/f/..%2f..%2fetc%2fpasswd",
        "/../../../../etc/passwd",
        "/d/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/../Cargo.toml",
        "/d/resid0-topk/f/0/ablation/..%2f..%2fetc%2fpasswd",
    ] {
        let r = s.server.get(target);
        assert!(
            r.status == 400 || r.status == 404,
            "{target}: status {}",
            r.status
        );
        assert!(!r.body.contains("root:"), "{target}");
        assert!(!r.body.contains("[package]"), "{target}");
    }
}

#[test]
fn oversized_requests_are_refused() {
    let s = shared();
    let long = "a".repeat(20_000);
    let r = s.server.get(&format!("/fires?text={long}"));
    assert_eq!(r.status, 414, "{}", r.body);
    assert!(r.body.contains("limit"));
    let mut c = Connection::open(s.server.addr).unwrap();
    let r = c
        .send(
            format!(
                "POST /fires HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{}",
                "b".repeat(1000)
            )
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.body);
    let r = s
        .server
        .get(&format!("/fires?text={}", "word%20".repeat(1100)));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("2000"), "{}", r.body);
    let r = s
        .server
        .get("/steer?dict=resid0-topk&feature=1&coef=2&prompt=Hi&tokens=65");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("1..=64"), "{}", r.body);
    // The tiny model's context is 64 tokens: a prompt plus 64 new ones cannot fit.
    let r = s
        .server
        .get("/steer?dict=resid0-topk&feature=1&coef=2&prompt=Hi%20there&tokens=64");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("context"), "{}", r.body);
}

#[test]
fn malformed_requests_get_a_4xx_with_a_message() {
    let s = shared();
    let cases: [(&str, u16, &str); 14] = [
        ("/d/nope", 404, "no dictionary named `nope`"),
        ("/d/nope/f/1", 404, "no dictionary"),
        ("/d/resid0-topk/f/abc", 400, "not a feature index"),
        ("/d/resid0-topk/f/-1", 400, "not a feature index"),
        ("/d/resid0-topk/f/48", 404, "outside"),
        (
            "/d/resid0-topk/f/99999999999999",
            400,
            "not a feature index",
        ),
        (
            "/steer?dict=resid0-topk&feature=1&coef=abc&prompt=hi",
            400,
            "`coef`",
        ),
        (
            "/steer?dict=resid0-topk&feature=1&coef=inf&prompt=hi",
            400,
            "finite",
        ),
        ("/steer?prompt=hi", 400, "missing parameter `dict`"),
        (
            "/steer?dict=resid0-topk&feature=1&coef=1&mode=push&prompt=hi",
            400,
            "`mode`",
        ),
        ("/d/resid0-topk/jump", 400, "missing parameter `feature`"),
        ("/d/resid0-topk/search", 400, "missing parameter `token`"),
        ("/d/resid0-topk/f/1/ablation/xyz", 400, "not an example id"),
        ("/nothing/here", 404, "no such page"),
    ];
    for (target, status, message) in cases {
        let r = s.server.get(target);
        assert_eq!(r.status, status, "{target}: {}", r.body);
        assert!(r.body.contains(message), "{target}: {}", r.body);
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    }
    let r = s.server.get("/d/resid0-topk/jump?feature=3");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/d/resid0-topk/f/3"));
    // An example of another feature is not this feature's example.
    let conn = read_only(&s.db);
    let other = examples(&conn, "e.dict = 0 AND e.feature <> 5")[0].id;
    let r = s
        .server
        .get(&format!("/d/resid0-topk/f/5/ablation/{other}"));
    assert_eq!(r.status, 404, "{}", r.body);
}

#[test]
fn the_server_binds_loopback_by_default() {
    let s = shared();
    assert_eq!(
        Options::new("x.sqlite").host,
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    );
    assert!(
        s.server.url.starts_with("http://127.0.0.1:"),
        "{}",
        s.server.url
    );
    assert_ne!(s.server.addr.port(), 0);
    let r = s.server.get("/");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
}

#[test]
fn an_ablation_is_computed_once_then_read_back() {
    let s = shared();
    let conn = read_only(&s.db);
    let e = examples(
        &conn,
        "e.dict = 0 AND e.kind = 'top' AND e.rank = 0 AND e.pos >= e.start + 4",
    )
    .into_iter()
    .next()
    .unwrap();
    let target = format!("/d/{D0}/f/{}/ablation/{}", e.feature, e.id);
    let first = s.server.page(&target);
    assert!(first.contains("Computed now and stored"), "{first}");
    let stored = |conn: &rusqlite::Connection| -> (f64, Vec<u8>, i64) {
        conn.query_row(
            "SELECT base, deltas, (SELECT count(*) FROM ablations) FROM ablations WHERE example = ?1",
            [e.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    let (base, deltas, rows) = stored(&conn);
    assert_eq!(common::f32s(&deltas).len(), (e.pos - e.start) as usize);
    assert!(
        (base - e.value).abs() <= 1e-3 * e.value.abs().max(1.0),
        "base {base} vs {}",
        e.value
    );
    // The start token is kept (never removed), so its delta is NaN.
    if e.start == 0 {
        assert!(common::f32s(&deltas)[0].is_nan());
    }
    let second = s.server.page(&target);
    assert!(second.contains("Read from the database."));
    assert_eq!(stored(&conn), (base, deltas, rows));
    // The feature page now links to it as stored.
    let page = s.server.page(&format!("/d/{D0}/f/{}", e.feature));
    assert!(page.contains(&format!("ablation/{}\">ablation</a>", e.id)));
}

#[test]
fn what_fires_here_lists_each_tokens_features() {
    let s = shared();
    let html = s
        .server
        .page("/fires?text=The%20cat%20sat%20on%20the%20mat.");
    let model = common::fixture::tiny_model();
    let saes: Vec<_> = ["resid0-topk", "resid1-topk"]
        .iter()
        .map(|n| {
            let path: String = read_only(&s.db)
                .query_row("SELECT path FROM dictionaries WHERE name = ?1", [n], |r| {
                    r.get(0)
                })
                .unwrap();
            saelab_sae::format::load_any(std::path::Path::new(&path)).unwrap()
        })
        .collect();
    let hooks = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
        .map(|h| HookPoint::parse(h, &model.model.cfg).unwrap());
    let dicts: Vec<HookedDictionary> = (0..2)
        .map(|k| HookedDictionary {
            name: "x",
            hook: hooks[k],
            sae: &saes[k],
        })
        .collect();
    let expected = what_fires(
        &model,
        "The cat sat on the mat.",
        &dicts,
        FiresLimits {
            max_tokens: 256,
            top_n: 5,
        },
    )
    .unwrap();
    assert_eq!(html.matches("<td class=\"num\">").count(), expected.len());
    let values: Vec<f32> = expected
        .iter()
        .flat_map(|t| t.top.iter().flatten().map(|e| e.1))
        .collect();
    assert_eq!(data_values(&html), values);
    let (f, _) = expected[1].top[0][0];
    assert!(html.contains(&format!("href=\"/d/resid0-topk/f/{f}\"")));
    assert!(html.contains("&lt;|endoftext|&gt;"));
}

#[test]
fn steering_shows_both_continuations() {
    let s = shared();
    let tokens = |html: &str, class: &str| -> Vec<u32> {
        let at = html.find(&format!("class=\"{class}\"")).unwrap();
        let block = &html[at..];
        let block = &block[..block.find("</p>").unwrap()];
        block
            .match_indices("data-token=\"")
            .map(|(i, m)| {
                let r = &block[i + m.len()..];
                r[..r.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    };
    let zero = s
        .server
        .page("/steer?dict=resid0-topk&feature=3&mode=add&coef=0&prompt=The%20cat&tokens=8");
    let (plain, steered) = (tokens(&zero, "unsteered"), tokens(&zero, "steered"));
    assert_eq!(plain.len(), 8.min(plain.len()));
    assert!(!plain.is_empty());
    assert_eq!(plain, steered);
    let big = s
        .server
        .page("/steer?dict=resid0-topk&feature=3&mode=add&coef=500&prompt=The%20cat&tokens=8");
    assert_eq!(tokens(&big, "unsteered"), plain);
    assert_ne!(tokens(&big, "steered"), plain);
    // Without a prompt the page is the form, prefilled.
    let form = s.server.page("/steer?dict=resid1-topk&feature=7");
    assert!(form.contains("<option value=\"resid1-topk\" selected>"));
    assert!(form.contains("value=\"7\""));
}
