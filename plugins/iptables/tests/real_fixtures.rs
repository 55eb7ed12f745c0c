//! Every real iptables dump under fixtures/real, and the facts it must yield.

#[path = "support/common.rs"]
mod common;

use common::*;
use triage_plugin_iptables::Query;

#[test]
fn every_real_fixture_parses_with_nothing_left_over() {
    let files = real_files();
    assert!(
        files.len() >= 19,
        "expected the 19 real iptables fixtures, found {}",
        files.len()
    );
    for (name, text) in &files {
        for table in ["nat", "mangle", "raw", "filter"] {
            let f = facts(
                text,
                &Query {
                    table: table.into(),
                    ..Query::default()
                },
            );
            assert_eq!(f.unparsed_lines, 0, "{name} ({table})");
            for ipv6 in [false, true] {
                facts(
                    text,
                    &Query {
                        table: table.into(),
                        ipv6,
                        ..Query::default()
                    },
                );
            }
        }
        let f = facts(text, &nat());
        assert!(f.rule_count > 0, "{name}: no nat rules");
        for chain in f.chains.values() {
            for (i, rule) in chain.rules.iter().enumerate() {
                assert_eq!(rule.position, i + 1, "{name}");
                assert!(
                    !rule.has_unknown_matches,
                    "{name}: unknown match in {}",
                    rule.raw
                );
            }
        }
    }
}

#[test]
fn istio_cni_custom_uid_excludes_the_custom_uid() {
    let text = real("istio-cni-plugin-custom-uid.golden.txt");
    let f = facts(
        &text,
        &Query {
            proxy_uid: Some(1000670000),
            ..nat()
        },
    );
    assert_eq!(f.format, "save");
    assert_eq!(f.rule_count, 20);
    assert_eq!(f.uid_owner_exclusions, vec!["1000670000"]);
    assert_eq!(f.gid_owner_exclusions, vec!["1000670001"]);
    assert_eq!(f.proxy_uid_excluded, Some(true));
    assert!(f.any_uid_excluded);
    assert_eq!(f.outbound.mode, "all");
    let f = facts(
        &text,
        &Query {
            proxy_uid: Some(1337),
            ..nat()
        },
    );
    assert_eq!(
        f.proxy_uid_excluded,
        Some(false),
        "1337 is not this pod's proxy uid"
    );
}

#[test]
fn istio_cni_basic_captures_everything() {
    let f = facts(
        &real("istio-cni-plugin-basic.golden.txt"),
        &Query {
            proxy_uid: Some(1337),
            ..nat()
        },
    );
    assert_eq!(f.outbound.mode, "all");
    assert_eq!(f.outbound.intercepted, Some(true));
    assert!(f.intercepts_all_outbound);
    assert_eq!(f.outbound.chain.as_deref(), Some("ISTIO_OUTPUT"));
    assert_eq!(f.outbound.excluded_cidrs, vec!["127.0.0.1/32"]);
    assert_eq!(f.proxy_uid_excluded, Some(true));
    assert_eq!(f.redirect_ports, vec![15001, 15006]);
    assert!(f.inbound.all_ports);
    assert_eq!(f.inbound.chain.as_deref(), Some("ISTIO_INBOUND"));
    assert_eq!(f.inbound.excluded_ports, vec![15008, 15020, 15021, 15090]);
    let output = &f.chains["ISTIO_OUTPUT"];
    assert_eq!(output.policy, None);
    assert_eq!(output.references, 1);
    assert_eq!(output.rules.len(), 11);
    assert_eq!(f.chains["ISTIO_IN_REDIRECT"].references, 3);
    let loopback = &output.rules[3];
    assert_eq!(loopback.out_interface.as_deref(), Some("lo"));
    assert!(loopback.destination_negated);
    assert_eq!(loopback.dports, vec!["15008"]);
    assert!(loopback.dports_negated);
    assert_eq!(loopback.target.as_deref(), Some("ISTIO_IN_REDIRECT"));
}

#[test]
fn istio_capture_empty_intercepts_no_outbound_destination() {
    let f = facts(&real("istio-iptables-capture-empty.golden.txt"), &nat());
    assert_eq!(f.tables_found, vec!["nat"]);
    assert_eq!(f.outbound.mode, "none");
    assert_eq!(f.outbound.intercepted, Some(false));
    assert!(f.chains.contains_key("ISTIO_OUTPUT"));
}

#[test]
fn kuma_multiple_flags_excludes_uid_5678() {
    let text = real("kuma-tproxy-alpine-3-multiple-flags-uid-owner.iptables-save.golden.txt");
    let f = facts(
        &text,
        &Query {
            proxy_uid: Some(5678),
            ..nat()
        },
    );
    assert_eq!(f.tables_found, vec!["raw", "nat"]);
    assert_eq!(f.uid_owner_exclusions, vec!["5678"]);
    assert_eq!(f.proxy_uid_excluded, Some(true));
    assert!(
        f.partial_owner_exclusions
            .iter()
            .any(|p| p.id == "106-108" && p.kind == "uid")
    );
    assert_eq!(f.outbound.mode, "all");
    assert_eq!(f.outbound.chain.as_deref(), Some("KUMA_MESH_OUTBOUND"));
    for cidr in ["10.0.0.1/32", "192.168.0.0/24", "127.0.0.1/32"] {
        assert!(
            f.outbound.excluded_cidrs.iter().any(|c| c == cidr),
            "{cidr}"
        );
    }
    assert_eq!(f.inbound.excluded_ports, vec![4444, 55555]);
    assert!(f.inbound.all_ports);
    let uid_rule = f.chains["KUMA_MESH_OUTBOUND"]
        .rules
        .iter()
        .find(|r| {
            r.uid_owner.as_deref() == Some("5678")
                && r.target.as_deref() == Some("RETURN")
                && !r.uid_owner_negated
        })
        .expect("the --uid-owner 5678 RETURN rule");
    assert!(
        uid_rule
            .comment
            .as_deref()
            .unwrap_or("")
            .contains("owned by UID 5678")
    );
    let skip = &f.chains["OUTPUT"].rules[0];
    assert_eq!(skip.dports, vec!["53", "3000:5000"]);
    assert_eq!(skip.uid_owner.as_deref(), Some("106-108"));
    let quoted = &f.chains["PREROUTING"].rules[1];
    assert!(
        quoted
            .comment
            .as_deref()
            .unwrap_or("")
            .contains("envoy's outbound passthrough port 15001")
    );
    // The connection to 10.0.0.1 is skipped by the first RETURN rules of OUTPUT.
    let f = facts(
        &text,
        &Query {
            vip: Some("10.0.0.1".parse().unwrap()),
            ..nat()
        },
    );
    assert_eq!(f.vip_intercepted, Some(false));
    let exit = f
        .vip_interception_path
        .iter()
        .find(|s| s.action == "RETURN")
        .expect("a RETURN step");
    assert!(
        exit.raw
            .as_deref()
            .unwrap_or("")
            .starts_with("-A OUTPUT -d 10.0.0.1/32"),
        "{exit:?}"
    );
    assert_eq!(exit.chain, "OUTPUT");
    let f = facts(
        &text,
        &Query {
            vip: Some("10.0.0.2".parse().unwrap()),
            port: Some(4000),
            ..nat()
        },
    );
    assert_eq!(
        f.vip_intercepted,
        Some(true),
        "uids 106-108 only skip ports 3000:5000, not others"
    );
    // Policies and declarations from `:CHAIN POLICY` lines.
    assert_eq!(f.chains["PREROUTING"].policy.as_deref(), Some("ACCEPT"));
    assert_eq!(f.chains["KUMA_MESH_INBOUND_REDIRECT"].policy, None);
}

#[test]
fn kuma_default_and_legacy_agree() {
    let a = facts(
        &real("kuma-tproxy-alpine-3-default.iptables-save.golden.txt"),
        &Query {
            proxy_uid: Some(5678),
            ..nat()
        },
    );
    let b = facts(
        &real("kuma-tproxy-amazon-linux-2-default.iptables-legacy-save.golden.txt"),
        &Query {
            proxy_uid: Some(5678),
            ..nat()
        },
    );
    for f in [&a, &b] {
        assert_eq!(f.rule_count, 11);
        assert_eq!(f.redirect_ports, vec![15001, 15006]);
        assert_eq!(f.proxy_uid_excluded, Some(true));
        assert_eq!(f.outbound.mode, "all");
        assert!(f.inbound.all_ports);
    }
    assert_eq!(b.tables_found, vec!["mangle", "raw", "nat"]);
}

#[test]
fn tproxy_fixture_has_tproxy_on_port() {
    let text = real("istio-iptables-capture-tproxy.golden.txt");
    let mangle = Query {
        table: "mangle".into(),
        ..Query::default()
    };
    let f = facts(&text, &mangle);
    assert_eq!(f.tables_found, vec!["mangle", "nat", "raw"]);
    assert_eq!(f.tproxy_ports, vec![15006]);
    let tproxy = &f.chains["ISTIO_TPROXY"].rules[0];
    assert_eq!(tproxy.target.as_deref(), Some("TPROXY"));
    assert_eq!(tproxy.on_port, Some(15006));
    assert_eq!(tproxy.tproxy_mark.as_deref(), Some("1337/0xffffffff"));
    assert_eq!(tproxy.destination.as_deref(), Some("127.0.0.1/32"));
    // `-I ISTIO_INBOUND 1/2/3` put those rules first.
    let inbound = &f.chains["ISTIO_INBOUND"].rules;
    assert_eq!(inbound.len(), 5);
    assert_eq!(inbound[0].marks[0].value, "1337");
    assert_eq!(inbound[2].in_interface.as_deref(), Some("lo"));
    assert_eq!(inbound[3].ctstates, vec!["RELATED", "ESTABLISHED"]);
    assert!(f.inbound.all_ports, "new inbound TCP is TPROXYed");
    assert_eq!(f.inbound.chain.as_deref(), Some("ISTIO_INBOUND"));
    let v6 = facts(
        &text,
        &Query {
            ipv6: true,
            ..mangle
        },
    );
    assert!(v6.ipv6);
    assert_eq!(
        v6.chains["ISTIO_TPROXY"].rules[0].destination.as_deref(),
        Some("::1/128")
    );
    let nat = facts(&text, &nat());
    assert_eq!(nat.outbound.mode, "cidrs");
    assert_eq!(nat.outbound.cidrs, vec!["9.9.0.0/16"]);
}

#[test]
fn ip_range_fixture_intercepts_only_its_cidr() {
    let text = real("istio-iptables-capture-ip-range.golden.txt");
    let f = facts(
        &text,
        &Query {
            vip: Some("9.9.1.2".parse().unwrap()),
            port: Some(80),
            ..nat()
        },
    );
    assert_eq!(f.outbound.mode, "cidrs");
    assert_eq!(f.outbound.cidrs, vec!["9.9.0.0/16"]);
    assert_eq!(
        f.outbound.excluded_cidrs,
        vec!["127.0.0.1/32", "1.1.0.0/16"]
    );
    assert!(!f.intercepts_all_outbound);
    assert_eq!(f.vip_intercepted, Some(true));
    let last = f.vip_interception_path.last().expect("a path");
    assert_eq!(last.chain, "ISTIO_REDIRECT");
    assert_eq!(last.action, "REDIRECT --to-ports 15001");
    let f = facts(
        &text,
        &Query {
            vip: Some("1.1.1.1".parse().unwrap()),
            ..nat()
        },
    );
    assert_eq!(f.vip_intercepted, Some(false));
    assert_eq!(f.redirect_ports, vec![15001, 15006, 15053]);
    assert_eq!(f.uid_owner_exclusions, vec!["3", "4"]);
    assert_eq!(f.gid_owner_exclusions, vec!["1", "2"]);
}

#[test]
fn inbound_ports_include_has_exactly_those_ports() {
    for name in [
        "istio-iptables-capture-inbound-ports-include.golden.txt",
        "istio-1.11-iptables-commands-inbound-ports-include.golden.txt",
    ] {
        let f = facts(
            &real(name),
            &Query {
                serving_ports: vec![31000, 8080],
                ..nat()
            },
        );
        assert!(!f.inbound.all_ports, "{name}");
        assert_eq!(f.inbound.redirected_ports, vec![31000, 32000], "{name}");
        assert_eq!(f.inbound.chain.as_deref(), Some("ISTIO_INBOUND"), "{name}");
        assert!(
            f.serving_ports[0].redirected == Some(true)
                && f.serving_ports[0].dropped == Some(false),
            "{name}"
        );
        assert_eq!(f.serving_ports[1].redirected, Some(false), "{name}");
    }
    let wildcard = facts(
        &real("istio-iptables-capture-inbound-ports-wildcard.golden.txt"),
        &nat(),
    );
    assert!(wildcard.inbound.all_ports);
    assert_eq!(wildcard.inbound.excluded_ports, vec![15008]);
}

#[test]
fn old_golden_commands_form_matches_the_save_form() {
    let commands = facts(
        &real("istio-1.11-iptables-commands-inbound-ports-include.golden.txt"),
        &nat(),
    );
    let save = facts(
        &real("istio-iptables-capture-inbound-ports-include.golden.txt"),
        &nat(),
    );
    assert_eq!(commands.format, "spec");
    assert_eq!(commands.rule_count, save.rule_count);
    assert_eq!(commands.uid_owner_exclusions, save.uid_owner_exclusions);
    assert_eq!(
        commands.chains.keys().collect::<Vec<_>>(),
        save.chains.keys().collect::<Vec<_>>()
    );
    let dns = real("istio-1.11-iptables-commands-dns-uid-gid.golden.txt");
    let nat_facts = facts(&dns, &nat());
    assert_eq!(nat_facts.tables_found, vec!["nat", "raw"]);
    assert_eq!(nat_facts.rule_count, 24);
    assert_eq!(nat_facts.redirect_ports, vec![15001, 15006, 15053]);
    let raw = facts(
        &dns,
        &Query {
            table: "raw".into(),
            ..Query::default()
        },
    );
    assert_eq!(raw.rule_count, 10);
    assert!(
        raw.chains["OUTPUT"]
            .rules
            .iter()
            .all(|r| r.target.as_deref() == Some("CT"))
    );
    assert_eq!(
        raw.chains["OUTPUT"].rules[0].target_options,
        vec!["--zone 1"]
    );
}

#[test]
fn ipv6_tables_are_told_apart() {
    let text = real("istio-iptables-capture-ipv6-inbound-ports.golden.txt");
    let v4 = facts(&text, &nat());
    let v6 = facts(
        &text,
        &Query {
            ipv6: true,
            ..nat()
        },
    );
    assert!(!v4.ipv6);
    assert!(v6.ipv6);
    assert_eq!(
        v4.chains["ISTIO_OUTPUT"].rules[0].source.as_deref(),
        Some("127.0.0.6/32")
    );
    assert_eq!(
        v6.chains["ISTIO_OUTPUT"].rules[0].source.as_deref(),
        Some("::6/128")
    );
    assert_eq!(v6.outbound.excluded_cidrs, vec!["::1/128"]);
    assert_eq!(v6.inbound.redirected_ports, vec![4000, 5000]);
    assert_eq!(v6.outbound.probe, "[2001:4860:4860::8888]:443");
    let dns = facts(
        &real("istio-iptables-capture-dns-uid-gid.golden.txt"),
        &Query {
            ipv6: true,
            ..nat()
        },
    );
    assert_eq!(
        dns.chains["ISTIO_OUTPUT_DNS"].rules[0]
            .destination
            .as_deref(),
        Some("::7f00:35/128")
    );
}

#[test]
fn owner_groups_exclusion_keeps_group_names() {
    let f = facts(
        &real("istio-iptables-capture-outbound-owner-groups-exclude.golden.txt"),
        &nat(),
    );
    assert_eq!(f.gid_owner_exclusions, vec!["1337", "888", "ftp"]);
    assert_eq!(f.uid_owner_exclusions, vec!["1337"]);
}

#[test]
fn ambient_marks_and_kube_virt_inserts() {
    let f = facts(
        &real("istio-ambient-cni-inpod-default.golden.txt"),
        &Query {
            vip: Some("10.96.0.10".parse().unwrap()),
            port: Some(80),
            ..nat()
        },
    );
    assert_eq!(f.outbound.mode, "all");
    assert_eq!(f.vip_intercepted, Some(true));
    let redirect = f.chains["ISTIO_OUTPUT"].rules.last().expect("rules");
    assert_eq!(
        redirect.marks,
        vec![triage_plugin_iptables::MarkMatch {
            value: "0x539/0xfff".into(),
            negated: true,
            connmark: false
        }]
    );
    assert_eq!(
        f.chains["ISTIO_OUTPUT"].rules[0].destination.as_deref(),
        Some("169.254.7.127/32")
    );
    let virt = facts(
        &real("istio-iptables-capture-kube-virt-interfaces.golden.txt"),
        &nat(),
    );
    let prerouting = &virt.chains["PREROUTING"].rules;
    assert_eq!(prerouting.len(), 4);
    assert_eq!(prerouting[0].in_interface.as_deref(), Some("eth2"));
    assert_eq!(prerouting[0].target.as_deref(), Some("ISTIO_REDIRECT"));
    assert_eq!(prerouting[3].in_interface.as_deref(), Some("eth1"));
    assert_eq!(prerouting[3].target.as_deref(), Some("RETURN"));
    assert!(virt.inbound.notes.iter().any(|n| n.contains("eth1")));
}

#[test]
fn drop_invalid_mangle_rule() {
    let f = facts(
        &real("istio-iptables-capture-drop-invalid.golden.txt"),
        &Query {
            table: "mangle".into(),
            serving_ports: vec![8080],
            ..Query::default()
        },
    );
    let rule = &f.chains["PREROUTING"].rules[0];
    assert_eq!(rule.ctstates, vec!["INVALID"]);
    assert_eq!(rule.target.as_deref(), Some("ISTIO_DROP"));
    assert!(
        f.serving_ports[0].dropped == Some(false),
        "a new connection is not INVALID"
    );
}

/// Istio's real rules for `-i 9.9.0.0/16 -x 1.1.0.0/16`: a VIP outside both falls off the
/// end of ISTIO_OUTPUT (no final RETURN), one in the excluded range is returned at its rule;
/// either way the fix copies the `-j ISTIO_REDIRECT` of the rule that intercepts 9.9.0.0/16.
#[test]
fn istio_ip_range_vip_fix() {
    let text = real("istio-iptables-capture-ip-range.golden.txt");
    let fix_for = |vip: &str| {
        facts(
            &text,
            &Query {
                vip: Some(vip.parse().unwrap()),
                ..nat()
            },
        )
        .vip_fix
        .unwrap_or_else(|| panic!("a fix for {vip}"))
        .argv
        .join(" ")
    };
    assert_eq!(
        fix_for("10.0.0.2"),
        "iptables -t nat -I ISTIO_OUTPUT 18 -d 10.0.0.2/32 -j ISTIO_REDIRECT"
    );
    assert_eq!(
        fix_for("1.1.2.3"),
        "iptables -t nat -I ISTIO_OUTPUT 16 -d 1.1.2.3/32 -j ISTIO_REDIRECT"
    );
}

/// A real Istio table with an ipset RETURN (`-m set`, which no text shows the members of)
/// inserted before the rule that redirects: that the VM intercepts nothing is not a verdict.
#[test]
fn an_ipset_return_before_the_redirect_leaves_outbound_interception_undecided() {
    let text = real("istio-iptables-capture-ip-range.golden.txt");
    let redirect = "-A ISTIO_OUTPUT -d 9.9.0.0/16 -j ISTIO_REDIRECT";
    let ipset = "-A ISTIO_OUTPUT -m set --match-set no-proxy dst -j RETURN";
    assert!(text.contains(redirect));
    let before = facts(&text, &nat());
    assert_eq!(before.outbound.intercepted, Some(true));
    assert_eq!(before.outbound.undecided_by, None);

    let with_ipset = text.replacen(redirect, &format!("{ipset}\n{redirect}"), 1);
    let f = facts(&with_ipset, &nat());
    assert_eq!(f.outbound.intercepted, None, "{:?}", f.outbound);
    assert_eq!(f.outbound.mode, "none");
    assert!(!f.intercepts_all_outbound);
    assert_eq!(f.outbound.undecided_by.as_deref(), Some(ipset));

    // After the redirect the ipset decides nothing about 9.9.0.0/16: still intercepted.
    let after = text.replacen(redirect, &format!("{redirect}\n{ipset}"), 1);
    let f = facts(&after, &nat());
    assert_eq!(f.outbound.intercepted, Some(true));
    assert_eq!(f.outbound.undecided_by, None);
}

/// Every inbound port of a real Istio CNI table is redirected, unless an ipset of trusted
/// sources returns first: then whether a serving port reaches the proxy is undecided.
#[test]
fn an_ipset_before_the_inbound_redirect_leaves_serving_ports_undecided() {
    let text = real("istio-cni-plugin-basic.golden.txt");
    let redirect = "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT";
    let ipset = "-A ISTIO_INBOUND -p tcp -m set --match-set trusted src -j RETURN";
    let query = Query {
        serving_ports: vec![8080, 15020],
        ..nat()
    };
    let before = facts(&text, &query);
    assert_eq!(before.serving_ports[0].redirected, Some(true));
    assert_eq!(before.serving_ports[0].undecided_by, None);

    let f = facts(
        &text.replacen(redirect, &format!("{ipset}\n{redirect}"), 1),
        &query,
    );
    assert_eq!(f.serving_ports[0].redirected, None);
    assert_eq!(f.serving_ports[0].dropped, Some(false));
    assert_eq!(f.serving_ports[0].undecided_by.as_deref(), Some(ipset));
    // 15020 returns before the ipset: decided.
    assert_eq!(f.serving_ports[1].redirected, Some(false));
    assert_eq!(f.serving_ports[1].undecided_by, None);
}

/// A real intercept-all Istio table (istio-cni) with an ipset RETURN before the catch-all
/// redirect: whether an arbitrary destination reaches the proxy is undecided, so "not all
/// outbound traffic is intercepted" is no verdict, and the rule that leaves it open is named.
#[test]
fn an_ipset_before_the_catch_all_redirect_is_named_as_what_leaves_it_undecided() {
    let text = real("istio-cni-plugin-basic.golden.txt");
    let catch_all = "-A ISTIO_OUTPUT -j ISTIO_REDIRECT";
    let ipset = "-A ISTIO_OUTPUT -m set --match-set no-proxy dst -j RETURN";
    assert!(text.contains(catch_all));
    let before = facts(&text, &nat());
    assert!(before.intercepts_all_outbound);
    assert_eq!(before.outbound.all_undecided_by, None);

    let with_ipset = text.replacen(catch_all, &format!("{ipset}\n{catch_all}"), 1);
    let f = facts(&with_ipset, &nat());
    assert!(!f.intercepts_all_outbound);
    assert_eq!(f.outbound.all_undecided_by.as_deref(), Some(ipset));
}

/// The proxy's owner exclusion narrowed by an ipset: whether Envoy's own connections loop
/// back depends on the set's members, which no table shows. Not excluded, not "excluded":
/// null, with the rule.
#[test]
fn an_owner_exclusion_that_needs_an_ipset_leaves_the_proxy_uid_undecided() {
    let text = real("istio-cni-plugin-basic.golden.txt");
    let exclusion = "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN";
    let narrowed =
        "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -m set --match-set mesh dst -j RETURN";
    assert!(text.contains(exclusion));
    let query = Query {
        proxy_uid: Some(1337),
        ..nat()
    };
    let before = facts(&text, &query);
    assert_eq!(before.proxy_uid_excluded, Some(true));
    assert_eq!(before.proxy_uid_undecided_by, None);

    let f = facts(&text.replacen(exclusion, narrowed, 1), &query);
    assert!(f.intercepts_all_outbound);
    assert_eq!(f.proxy_uid_excluded, None);
    assert!(
        f.proxy_uid_undecided_by
            .as_deref()
            .is_some_and(|r| r.contains("--match-set mesh")),
        "{:?}",
        f.proxy_uid_undecided_by
    );
}
