//! The protocol core's options from the configuration: `tern_proto` owns its settings types and
//! never sees [`Config`]; this is the one place that copies one into the other.

use tern_proto::options::Options;

use super::Config;

impl Config {
    /// What the protocol core needs of this configuration.
    pub fn proto_options(&self) -> Options {
        Options {
            listening_port: self.listening_port,
            tls_listening_port: self.tls_listening_port,
            alt_listening_port: self.alt_listening_port,
            alt_tls_listening_port: self.alt_tls_listening_port,
            listening_ips: self.listening_ips.clone(),
            relay_ips: self.relay_ips.clone(),
            external_ips: self.external_ips.clone(),
            min_port: self.min_port,
            max_port: self.max_port,
            no_udp_relay: self.no_udp_relay,
            no_tcp_relay: self.no_tcp_relay,
            allocation_default_address_family: self.allocation_default_address_family,
            stun_only: self.stun_only,
            no_stun: self.no_stun,
            stun_backward_compatibility: self.stun_backward_compatibility,
            channel_numbers: self.channel_numbers,
            secure_stun: self.secure_stun,
            fingerprint: self.fingerprint,
            software_attribute: self.software_attribute,
            no_auth: self.no_auth,
            users: self.users.clone(),
            realm: self.realm.clone(),
            use_auth_secret: self.use_auth_secret,
            static_auth_secrets: self.static_auth_secrets.clone(),
            rest_api_separator: self.rest_api_separator,
            userdb_lookup_rps: self.userdb_lookup_rps,
            password_algorithms: self.password_algorithms.clone(),
            userhash: self.userhash,
            user_quota: self.user_quota,
            total_quota: self.total_quota,
            max_bps: self.max_bps,
            bps_capacity: self.bps_capacity,
            stale_nonce: self.stale_nonce,
            max_allocate_lifetime: self.max_allocate_lifetime,
            channel_lifetime: self.channel_lifetime,
            permission_lifetime: self.permission_lifetime,
            unauthorized_ratelimit: self.unauthorized_ratelimit,
            unauthorized_ratelimit_rps: self.unauthorized_ratelimit_rps,
            allowed_peer_ips: self.allowed_peer_ips.clone(),
            denied_peer_ips: self.denied_peer_ips.clone(),
            allow_loopback_peers: self.allow_loopback_peers,
            no_multicast_peers: self.no_multicast_peers,
            log_binding: self.log_binding,
            prometheus: self.prometheus,
            prometheus_port: self.prometheus_port,
            prometheus_address: self.prometheus_address,
            alternate_servers: self.alternate_servers.clone(),
            udp_alternate_servers: self.udp_alternate_servers.clone(),
            tcp_alternate_servers: self.tcp_alternate_servers.clone(),
            tls_alternate_servers: self.tls_alternate_servers.clone(),
            alternate_server_mode: self.alternate_server_mode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_defaults_are_the_configuration_defaults() {
        assert_eq!(Config::default().proto_options(), Options::default());
    }
}
