//! Open file descriptors: the ledger (RocksDB), the object store, peers and webhooks need their
//! own, so client connections must never be able to take them all (RocksDB failing to open a
//! file stops the ledger for good).

use crate::config::ConfigError;

/// Descriptors kept for everything but client connections: RocksDB keeps at most
/// [`relay_raft::store::ROCKSDB_MAX_OPEN_FILES`] open, and the rest covers its WAL and logs,
/// the object store's connections or files, peer channels, webhook deliveries and stdio.
pub const RESERVED: u64 = relay_raft::store::ROCKSDB_MAX_OPEN_FILES as u64 + 512;
/// Fewer client connections than this is not a usable node.
const CONNECTIONS_MIN: u64 = 64;

/// Raises the soft limit on open files to the hard limit; returns the limit now in force.
pub fn raise_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur as u64
}

/// The client connections this node may accept: the configured cap, lowered so that
/// [`RESERVED`] descriptors always remain; an error when too few would remain for clients.
pub fn connection_cap(configured: usize, open_files_limit: u64) -> Result<usize, ConfigError> {
    let room = open_files_limit.saturating_sub(RESERVED);
    if room < CONNECTIONS_MIN {
        return Err(ConfigError(format!(
            "the open-file limit is {open_files_limit}; Relay keeps {RESERVED} for itself and needs room for at \
             least {CONNECTIONS_MIN} connections: raise it (ulimit -n, or LimitNOFILE= for systemd)"
        )));
    }
    Ok((configured as u64).min(room) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections never eat into the reserve, and a limit with no room for clients is refused.
    #[test]
    fn connections_leave_the_reserve_alone() {
        assert_eq!(connection_cap(4096, 1_048_576).unwrap(), 4096);
        assert_eq!(connection_cap(4096, 4096).unwrap() as u64, 4096 - RESERVED);
        assert!(connection_cap(4096, RESERVED + 10).is_err());
        assert!(raise_limit() >= 64);
    }
}
