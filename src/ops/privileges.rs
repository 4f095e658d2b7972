//! `proc-user` / `proc-group`: switch to an unprivileged user once every socket is bound.
//! Supplementary groups are cleared first, then the group, then the user (the order that leaves
//! no way back).

use std::ffi::CString;
use std::io;

/// Switches to `user` (and its primary group unless `group` names one). Names or numeric ids.
/// Already running as them: nothing to do.
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> io::Result<()> {
    if user.is_none() && group.is_none() {
        return Ok(());
    }
    let (uid, primary) = match user {
        Some(u) => {
            let (uid, gid) = lookup_user(u)?;
            (Some(uid), gid)
        }
        None => (None, None),
    };
    let gid = match group {
        Some(g) => Some(lookup_group(g)?),
        None => primary,
    };
    // SAFETY: getuid/getgid have no preconditions.
    let (cur_uid, cur_gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid.is_none_or(|u| u == cur_uid) && gid.is_none_or(|g| g == cur_gid) {
        return Ok(());
    }
    // SAFETY: setgroups with a zero count never reads the pointer.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return Err(os_error("clearing supplementary groups"));
    }
    if let Some(gid) = gid {
        // SAFETY: plain system call; glibc applies it to every thread.
        if unsafe { libc::setgid(gid) } != 0 {
            return Err(os_error("setgid"));
        }
    }
    if let Some(uid) = uid {
        // SAFETY: as above.
        if unsafe { libc::setuid(uid) } != 0 {
            return Err(os_error("setuid"));
        }
    }
    Ok(())
}

fn os_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// (uid, primary gid) of a user name, or a numeric uid (whose group is then left as it is).
fn lookup_user(name: &str) -> io::Result<(libc::uid_t, Option<libc::gid_t>)> {
    let c = CString::new(name).map_err(|_| io::Error::other("user name contains NUL"))?;
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: every pointer is valid for the call; buf outlives the use of `pw`'s strings
    // (only the numeric fields are read).
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc == 0 && !found.is_null() {
        return Ok((pw.pw_uid, Some(pw.pw_gid)));
    }
    match name.parse::<libc::uid_t>() {
        Ok(uid) => Ok((uid, None)),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("proc-user {name}: no such user"),
        )),
    }
}

fn lookup_group(name: &str) -> io::Result<libc::gid_t> {
    let c = CString::new(name).map_err(|_| io::Error::other("group name contains NUL"))?;
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: as in lookup_user.
    let rc =
        unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc == 0 && !found.is_null() {
        return Ok(gr.gr_gid);
    }
    name.parse::<libc::gid_t>().map_err(|_| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("proc-group {name}: no such group"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_and_unknown_names_are_errors() {
        assert_eq!(lookup_user("root").unwrap(), (0, Some(0)));
        assert_eq!(lookup_user("4321").unwrap(), (4321, None));
        assert_eq!(lookup_group("root").unwrap(), 0);
        assert!(lookup_user("tern-no-such-user-x").is_err());
        assert!(lookup_group("tern-no-such-group-x").is_err());
    }

    #[test]
    fn staying_who_we_are_is_a_no_op() {
        // SAFETY: no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        drop_privileges(Some(&uid.to_string()), Some(&gid.to_string())).unwrap();
        drop_privileges(None, None).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { (libc::getuid(), libc::getgid()) }, (uid, gid));
    }
}
