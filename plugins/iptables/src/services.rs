//! Port names `iptables -L` prints without `-n` (from a typical /etc/services).

const SERVICES: &[(&str, u16)] = &[
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("www", 80),
    ("kerberos", 88),
    ("pop3", 110),
    ("sunrpc", 111),
    ("ntp", 123),
    ("imap2", 143),
    ("imap", 143),
    ("snmp", 161),
    ("bgp", 179),
    ("ldap", 389),
    ("https", 443),
    ("microsoft-ds", 445),
    ("submissions", 465),
    ("rtsp", 554),
    ("submission", 587),
    ("ldaps", 636),
    ("domain-s", 853),
    ("rsync", 873),
    ("imaps", 993),
    ("pop3s", 995),
    ("socks", 1080),
    ("openvpn", 1194),
    ("ms-sql-s", 1433),
    ("ms-sql-m", 1434),
    ("mqtt", 1883),
    ("nfs", 2049),
    ("mysql", 3306),
    ("sip", 5060),
    ("xmpp-client", 5222),
    ("postgresql", 5432),
    ("postgres", 5432),
    ("amqp", 5672),
    ("x11", 6000),
    ("redis", 6379),
    ("http-alt", 8080),
    ("webcache", 8080),
    ("tproxy", 8081),
    ("pcsync-https", 8443),
    ("git", 9418),
    ("zabbix-agent", 10050),
    ("memcache", 11211),
    ("mongodb", 27017),
];

/// A port given as a number or a service name.
pub fn port_number(text: &str) -> Option<u16> {
    if let Ok(n) = text.parse::<u16>() {
        return Some(n);
    }
    SERVICES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|&(_, port)| port)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_and_numbers() {
        assert_eq!(super::port_number("mysql"), Some(3306));
        assert_eq!(super::port_number("http-alt"), Some(8080));
        assert_eq!(super::port_number("15001"), Some(15001));
        assert_eq!(super::port_number("no-such-service"), None);
        assert_eq!(super::port_number("70000"), None);
    }
}
