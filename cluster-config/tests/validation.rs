//! One test per refusal rule of config validation, plus the accepted examples.

use std::path::Path;

use cairn_cluster_config::{ClusterConfig, ConfigErrors, GroupId, Residency, META_GROUP};

const HEADER: &str = r#"
cluster_name = "test"
replication_factor = 3
master_key_file = "master.key"
admin_token_file = "admin.token"
"#;

fn node(id: u64, region: &str) -> String {
    format!(
        "[[nodes]]\nid = {id}\nregion = \"{region}\"\nraft_addr = \"127.0.0.1:{}\"\n\
         http_addr = \"127.0.0.1:{}\"\ngrpc_addr = \"127.0.0.1:{}\"\ndata_dir = \"n{id}\"\n",
        7000 + id,
        8000 + id,
        9000 + id
    )
}

fn region(name: &str, residency: &str) -> String {
    format!("[[regions]]\nname = \"{name}\"\nresidency = \"{residency}\"\n")
}

fn three_nodes() -> String {
    format!(
        "{HEADER}{}{}{}{}",
        region("local", "hard"),
        node(1, "local"),
        node(2, "local"),
        node(3, "local")
    )
}

/// These tests are about other rules: their loopback configs run in plaintext,
/// unless the test writes its own `[tls]`.
fn parse(text: &str) -> Result<ClusterConfig, ConfigErrors> {
    if text.contains("[tls]") {
        return ClusterConfig::parse(text, Path::new("/etc/cairn"));
    }
    ClusterConfig::parse(
        &format!("{text}\n[tls]\ninsecure_plaintext = true\n"),
        Path::new("/etc/cairn"),
    )
}

fn refused(text: &str, field: &str) -> ConfigErrors {
    let errs = parse(text).expect_err("config should be refused");
    assert!(
        errs.mentions(field),
        "expected an error naming {field}, got: {errs}"
    );
    errs
}

#[test]
fn accepts_the_three_node_example() {
    let cfg = parse(&three_nodes()).expect("valid");
    assert_eq!(cfg.nodes.len(), 3);
    assert_eq!(cfg.default_region, "local");
    assert_eq!(cfg.nodes[0].data_dir, Path::new("/etc/cairn/n1"));
    assert_eq!(cfg.master_key_file, Path::new("/etc/cairn/master.key"));
    let groups = cfg.groups();
    assert_eq!(groups.len(), 2, "meta + one region group");
    assert_eq!(groups[0].id, META_GROUP);
    assert_eq!(groups[1].id, GroupId(1));
    assert_eq!(groups[1].voters, vec![1, 2, 3]);
}

#[test]
fn the_checked_in_example_configs_are_valid() {
    // The runtime value (cargo sets it for test runs): a binary built from another
    // checkout sharing the target dir must still look at this checkout.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || env!("CARGO_MANIFEST_DIR").into(),
        std::path::PathBuf::from,
    );
    let dir = manifest_dir.join("../scripts");
    for name in ["cluster-3.toml", "cluster-5-two-regions.toml"] {
        let path = dir.join(name);
        if path.exists() {
            ClusterConfig::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            assert_ne!(name, "cluster-3.toml", "scripts/cluster-3.toml is missing");
        }
    }
}

#[test]
fn refuses_unknown_fields() {
    let text = three_nodes().replace("cluster_name", "colour = 1\ncluster_name");
    let errs = refused(&text, "<toml>");
    assert!(errs.to_string().contains("colour"), "{errs}");
}

#[test]
fn refuses_missing_required_field() {
    let text = three_nodes().replace("master_key_file = \"master.key\"\n", "");
    let errs = refused(&text, "<toml>");
    assert!(errs.to_string().contains("master_key_file"), "{errs}");
}

#[test]
fn refuses_bad_cluster_name() {
    refused(
        &three_nodes().replace("\"test\"", "\"Bad Name\""),
        "cluster_name",
    );
}

#[test]
fn refuses_zero_replication_factor() {
    refused(
        &three_nodes().replace("replication_factor = 3", "replication_factor = 0"),
        "replication_factor",
    );
}

#[test]
fn refuses_replication_factor_larger_than_node_count() {
    let errs = refused(
        &three_nodes().replace("replication_factor = 3", "replication_factor = 5"),
        "replication_factor",
    );
    assert!(errs
        .to_string()
        .contains("larger than the number of nodes (3)"));
}

#[test]
fn refuses_duplicate_node_ids() {
    let text = format!(
        "{HEADER}{}{}{}",
        region("local", "best-effort"),
        node(1, "local"),
        node(2, "local")
    ) + &node(2, "local")
        .replace("7002", "7003")
        .replace("8002", "8003")
        .replace("9002", "9003")
        .replace("\"n2\"", "\"n3\"");
    let errs = refused(&text, "nodes[2].id");
    assert!(errs.to_string().contains("duplicate node id 2"));
}

#[test]
fn refuses_duplicate_addresses() {
    let text = three_nodes().replace(
        "http_addr = \"127.0.0.1:8003\"",
        "http_addr = \"127.0.0.1:8002\"",
    );
    let errs = refused(&text, "nodes[2].http_addr");
    assert!(errs
        .to_string()
        .contains("duplicate address 127.0.0.1:8002"));
}

#[test]
fn refuses_an_address_used_for_two_roles() {
    let text = three_nodes().replace(
        "grpc_addr = \"127.0.0.1:9001\"",
        "grpc_addr = \"127.0.0.1:7001\"",
    );
    refused(&text, "nodes[0].grpc_addr");
}

#[test]
fn refuses_malformed_addresses() {
    refused(
        &three_nodes().replace("raft_addr = \"127.0.0.1:7002\"", "raft_addr = \"nowhere\""),
        "nodes[1].raft_addr",
    );
}

#[test]
fn refuses_duplicate_data_dirs() {
    refused(
        &three_nodes().replace("data_dir = \"n3\"", "data_dir = \"n1\""),
        "nodes[2].data_dir",
    );
}

#[test]
fn refuses_node_in_unknown_region() {
    let errs = refused(
        &three_nodes().replace(
            "region = \"local\"\nraft_addr = \"127.0.0.1:7003\"",
            "region = \"mars\"\nraft_addr = \"127.0.0.1:7003\"",
        ),
        "nodes[2].region",
    );
    assert!(errs.to_string().contains("\"mars\""));
}

#[test]
fn refuses_duplicate_regions() {
    let text = three_nodes() + &region("local", "best-effort");
    refused(&text, "regions[1].name");
}

#[test]
fn refuses_no_regions_and_no_nodes() {
    let errs = refused(HEADER, "regions");
    assert!(errs.mentions("nodes"));
}

#[test]
fn refuses_hard_region_with_fewer_nodes_than_replication_factor() {
    let text = format!(
        "{HEADER}{}{}{}{}{}{}",
        region("eu", "hard"),
        region("us", "best-effort"),
        node(1, "eu"),
        node(2, "eu"),
        node(3, "us"),
        node(4, "us")
    );
    let errs = refused(&text, "regions[0]");
    assert!(
        errs.to_string()
            .contains("region eu is hard-pinned but has 2 node(s); needs 3"),
        "{errs}"
    );
}

#[test]
fn refuses_unknown_default_region() {
    let text = three_nodes().replace("cluster_name", "default_region = \"mars\"\ncluster_name");
    refused(&text, "default_region");
}

#[test]
fn refuses_election_timeout_not_above_heartbeat() {
    let text =
        three_nodes() + "[raft]\nheartbeat_interval_ms = 500\nelection_timeout_min_ms = 400\n";
    refused(&text, "raft.election_timeout_min_ms");
}

#[test]
fn reports_every_problem_at_once() {
    let text = three_nodes()
        .replace("replication_factor = 3", "replication_factor = 0")
        .replace("data_dir = \"n3\"", "data_dir = \"n1\"");
    let errs = parse(&text).expect_err("refused");
    assert!(errs.mentions("replication_factor"));
    assert!(errs.mentions("nodes[2].data_dir"));
}

#[test]
fn best_effort_region_borrows_nodes_to_reach_replication_factor() {
    let text = format!(
        "{HEADER}{}{}{}{}{}{}{}",
        region("eu", "hard"),
        region("us", "best-effort"),
        node(1, "eu"),
        node(2, "eu"),
        node(3, "eu"),
        node(4, "us"),
        node(5, "us")
    );
    let cfg = parse(&text).expect("valid");
    let eu = cfg.region_group("eu").expect("eu group");
    assert_eq!(eu.voters, vec![1, 2, 3]);
    assert!(eu.borrowed.is_empty());
    assert_eq!(eu.residency, Some(Residency::Hard));
    let us = cfg.region_group("us").expect("us group");
    assert_eq!(us.voters, vec![1, 4, 5]);
    assert_eq!(us.borrowed, vec![1]);
    assert_eq!(cfg.groups()[0].voters, vec![1, 2, 3, 4, 5]);
}

/// Three loopback nodes with TLS files; `addr_host` replaces 127.0.0.1 in node 1's http_addr.
fn tls_nodes(addr_host: &str, tls: &str, files: bool) -> String {
    let mut text = format!("{HEADER}{}", region("local", "hard"));
    for id in 1..=3u64 {
        let mut n = node(id, "local");
        if id == 1 {
            n = n.replace(
                &format!("http_addr = \"127.0.0.1:{}\"", 8000 + id),
                &format!("http_addr = \"{addr_host}:{}\"", 8000 + id),
            );
        }
        if files {
            n.push_str(&format!(
                "tls_cert_file = \"tls/node-{id}.pem\"\ntls_key_file = \"tls/node-{id}-key.pem\"\n"
            ));
        }
        text.push_str(&n);
    }
    format!("{text}[tls]\n{tls}\n")
}

#[test]
fn accepts_tls_with_a_ca_and_every_nodes_files() {
    let cfg = parse(&tls_nodes("10.0.0.1", "ca_file = \"tls/ca.pem\"", true)).expect("valid");
    let tls = cfg.tls.as_ref().expect("tls on");
    assert_eq!(tls.ca_file, Path::new("/etc/cairn/tls/ca.pem"));
    assert_eq!(tls.ca_key_file(), Path::new("/etc/cairn/tls/ca-key.pem"));
    let node = cfg.nodes[0].tls.as_ref().expect("node files");
    assert_eq!(node.key_file, Path::new("/etc/cairn/tls/node-1-key.pem"));
    assert_eq!(cfg.limits.http_max_connections, 4096);
    assert_eq!(cfg.limits.peer_max_connections, 64);
}

#[test]
fn refuses_a_config_without_tls_unless_it_says_insecure_plaintext() {
    refused(&tls_nodes("127.0.0.1", "", false), "tls.ca_file");
    refused(
        &tls_nodes("127.0.0.1", "ca_file = \"tls/ca.pem\"", false),
        "nodes[0].tls_cert_file",
    );
    let cfg = parse(&tls_nodes("127.0.0.1", "insecure_plaintext = true", false))
        .expect("loopback plaintext");
    assert!(cfg.tls.is_none());
}

#[test]
fn refuses_a_non_loopback_address_without_tls() {
    let errs = refused(
        &tls_nodes("10.0.0.1", "insecure_plaintext = true", false),
        "nodes[0].http_addr",
    );
    assert!(
        errs.to_string().contains("not a loopback address"),
        "{errs}"
    );
    refused(
        &tls_nodes("localhost.example.com", "insecure_plaintext = true", false),
        "nodes[0].http_addr",
    );
    parse(&tls_nodes("localhost", "insecure_plaintext = true", false))
        .expect("localhost is loopback");
    parse(&tls_nodes("[::1]", "insecure_plaintext = true", false)).expect("::1 is loopback");
}

#[test]
fn refuses_tls_files_together_with_plaintext_and_zero_limits() {
    refused(
        &tls_nodes("127.0.0.1", "insecure_plaintext = true", true),
        "nodes[0].tls_cert_file",
    );
    let text = format!(
        "{}[limits]\nhttp_max_connections = 0\n",
        tls_nodes("127.0.0.1", "insecure_plaintext = true", false)
    );
    refused(&text, "limits.http_max_connections");
}
