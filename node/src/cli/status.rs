//! `cairn status`: every node's view of every group, as a table (or JSON).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::join_all;
use serde_json::Value;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
    /// Print the raw per-node JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (cfg, token) = super::load(&args.config)?;
    let client = super::http_client(&cfg, Duration::from_secs(3))?;
    let calls = cfg.nodes.iter().map(|n| {
        let client = client.clone();
        let url = format!("{}/v1/cluster/status", super::base_url(&cfg, &n.http_addr));
        let token = token.expose().to_owned();
        async move {
            let result = async {
                let resp = client.get(&url).bearer_auth(token).send().await?;
                let status = resp.status();
                let body: serde_json::Value = resp.json().await?;
                Ok::<_, reqwest::Error>((status, body))
            }
            .await;
            (n, result)
        }
    });
    let answers = join_all(calls).await;
    if args.json {
        let all: Vec<_> = answers
            .iter()
            .map(|(n, r)| match r {
                Ok((_, body)) => body.clone(),
                Err(e) => serde_json::json!({"id": n.id, "error": e.to_string()}),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    let mut rows = vec![vec![
        "NODE", "ENDPOINT", "REGION", "GROUP", "ROLE", "LEADER", "TERM", "COMMIT", "APPLIED",
        "SNAPSHOT", "LAG", "VOTERS", "ERRORS",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>()];
    let mut unreachable = Vec::new();
    let mut any_borrowed = false;
    for (n, result) in &answers {
        match result {
            Ok((status, body)) if status.is_success() => {
                for g in body["groups"].as_array().into_iter().flatten() {
                    let num = |k: &str| g[k].as_u64().map_or("-".to_owned(), |v| v.to_string());
                    let lag = g["replication"]
                        .as_array()
                        .filter(|r| !r.is_empty())
                        .map_or("-".to_owned(), |r| {
                            r.iter()
                                .map(|p| format!("{}:{}", p["node"], p["lag"]))
                                .collect::<Vec<_>>()
                                .join(",")
                        });
                    // Borrowed voters (from another region) are marked with `*`.
                    let borrowed: Vec<u64> = g["borrowed"]
                        .as_array()
                        .map(|b| b.iter().filter_map(Value::as_u64).collect())
                        .unwrap_or_default();
                    if !borrowed.is_empty() {
                        any_borrowed = true;
                    }
                    let voters = g["voters"]
                        .as_array()
                        .map(|v| {
                            v.iter()
                                .filter_map(Value::as_u64)
                                .map(|id| {
                                    if borrowed.contains(&id) {
                                        format!("{id}*")
                                    } else {
                                        id.to_string()
                                    }
                                })
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default();
                    let name = g["group"].as_str().unwrap_or("?");
                    let group = match g["residency"].as_str() {
                        Some(r) => format!("{name} ({r})"),
                        None => name.to_owned(),
                    };
                    rows.push(vec![
                        n.id.to_string(),
                        n.http_addr.clone(),
                        n.region.clone(),
                        group,
                        if body["admitted"] == false {
                            format!("{} (no vote)", g["role"].as_str().unwrap_or("?"))
                        } else {
                            g["role"].as_str().unwrap_or("?").to_owned()
                        },
                        num("leader"),
                        num("term"),
                        num("commit_index"),
                        num("applied_index"),
                        num("snapshot_index"),
                        lag,
                        voters,
                        String::new(),
                    ]);
                }
            }
            Ok((status, body)) => {
                let detail = body["detail"].as_str().unwrap_or("").to_owned();
                rows.push(error_row(n, &format!("{status}: {detail}")));
            }
            Err(e) => {
                unreachable.push(n.id);
                rows.push(error_row(n, &format!("unreachable: {e}")));
            }
        }
    }
    print!("{}", table(&rows));
    if any_borrowed {
        println!("* borrowed: a voter from another region (the group's region has too few nodes)");
    }
    if unreachable.is_empty() {
        println!("all {} nodes reachable", cfg.nodes.len());
    } else {
        println!("unreachable nodes: {unreachable:?}");
    }
    Ok(())
}

fn error_row(n: &cairn_cluster_config::NodeConfig, err: &str) -> Vec<String> {
    let mut row = vec![n.id.to_string(), n.http_addr.clone(), n.region.clone()];
    row.extend(std::iter::repeat_n("-".to_owned(), 9));
    row.push(err.to_owned());
    row
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let sep: String = widths
        .iter()
        .map(|w| "-".repeat(w + 2))
        .collect::<Vec<_>>()
        .join("+");
    let mut out = format!("+{sep}+\n");
    for (i, row) in rows.iter().enumerate() {
        out.push('|');
        for (c, w) in widths.iter().enumerate() {
            let cell = row.get(c).map_or("", String::as_str);
            let _ = write!(out, " {cell:<w$} |");
        }
        out.push('\n');
        if i == 0 {
            let _ = writeln!(out, "+{sep}+");
        }
    }
    let _ = writeln!(out, "+{sep}+");
    out
}
