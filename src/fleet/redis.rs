//! The fleet's keys in `redis-statsdb` and the Lua scripts that change them, each one atomic on
//! the Redis server and timed by its clock (`TIME`), so nodes need no synchronised clocks.
//!
//! - `tern/fleet/total` and `tern/fleet/user/<user>`: sorted sets of leases, one member
//!   `<node>/<n>` per allocation, scored by the Unix millisecond it expires at. A live node
//!   moves its leases' expiry forward every beat; a dead node's lapse within `fleet-lease-time`.
//! - `tern/fleet/nodes`: the live nodes, scored the same way; `tern/fleet/node/<node>`: a hash
//!   with the node's load, listeners and `external-ip` mapping (docs/fleet.md).
//!
//! A key of another type than the scripts write (written by something else) is never changed:
//! leases it would have held are not counted there, and the scripts say so.

use redis::{Connection, Value};

use crate::auth::SourceError;

pub const TOTAL: &str = "tern/fleet/total";
pub const NODES: &str = "tern/fleet/nodes";

pub fn user_key(user: &str) -> String {
    format!("tern/fleet/user/{user}")
}

pub fn node_key(node: &str) -> String {
    format!("tern/fleet/node/{node}")
}

/// Shared head of every script: `now` in Unix milliseconds by the Redis clock, the lease length,
/// and `plain(key)`: whether a key is absent or a sorted set (one the scripts may write).
const PRELUDE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function plain(key, kind)
  local k = redis.call('TYPE', key).ok
  return k == 'none' or k == kind
end
";

/// KEYS: total, user. ARGV: member, lease ms, total quota, user quota (0: none).
/// Returns {status, foreign}: status 0 granted, 1 user quota, 2 total quota, -1 a key of the
/// wrong type; foreign: members scored further ahead than any node writes (not counted).
const ACQUIRE: &str = r"
local lease = tonumber(ARGV[2])
local far = now + 2 * lease
local foreign = 0
local counts = {}
for i = 1, #KEYS do
  if not plain(KEYS[i], 'zset') then return {-1, i} end
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  counts[i] = redis.call('ZCOUNT', KEYS[i], now, far)
  foreign = foreign + redis.call('ZCOUNT', KEYS[i], '(' .. far, '+inf')
end
local limits = {tonumber(ARGV[3]), tonumber(ARGV[4])}
for i = 1, #KEYS do
  if limits[i] > 0 and counts[i] >= limits[i] then return {3 - i, foreign} end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], 2 * lease)
end
return {0, foreign}
";

/// KEYS: total, then one user key per lease. ARGV: lease ms, then one member per lease.
/// Returns how many keys of the wrong type were left alone.
const REFRESH: &str = r"
local lease = tonumber(ARGV[1])
local skipped = 0
local function put(key, member)
  if plain(key, 'zset') then
    redis.call('ZADD', key, now + lease, member)
    redis.call('PEXPIRE', key, 2 * lease)
  else
    skipped = skipped + 1
  end
end
for i = 2, #KEYS do
  put(KEYS[1], ARGV[i])
  put(KEYS[i], ARGV[i])
end
return skipped
";

/// KEYS: total, user. ARGV: member. A key of the wrong type is left alone.
const RELEASE: &str = r"
for i = 1, #KEYS do
  if plain(KEYS[i], 'zset') then redis.call('ZREM', KEYS[i], ARGV[1]) end
end
return 0
";

/// KEYS: the node set, this node's hash. ARGV: node id, lease ms, then field, value pairs.
/// Publishes this node and returns every live node as {id, n, field, value, ...} (n: the
/// number of strings that follow), skipping records of the wrong type.
const BEAT: &str = r"
local lease = tonumber(ARGV[2])
if not plain(KEYS[1], 'zset') then return {-1} end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[2], lease)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * lease)
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, now + 2 * lease)) do
  local key = 'tern/fleet/node/' .. id
  if redis.call('TYPE', key).ok == 'hash' then
    local fields = redis.call('HGETALL', key)
    table.insert(out, id)
    table.insert(out, tostring(#fields))
    for _, f in ipairs(fields) do table.insert(out, f) end
  end
end
return out
";

/// KEYS: the node set, this node's hash. ARGV: node id. A node that stops says so at once.
const LEAVE: &str = r"
if plain(KEYS[1], 'zset') then redis.call('ZREM', KEYS[1], ARGV[1]) end
if plain(KEYS[2], 'hash') then redis.call('DEL', KEYS[2]) end
return 0
";

fn eval(
    conn: &mut Connection,
    script: &str,
    keys: &[&str],
    args: &[&str],
) -> Result<Value, SourceError> {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(format!("{PRELUDE}{script}")).arg(keys.len());
    for k in keys {
        cmd.arg(*k);
    }
    for a in args {
        cmd.arg(*a);
    }
    cmd.query(conn)
        .map_err(|e| SourceError(format!("Redis script: {e}")))
}

/// What an acquire script said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    Granted,
    UserQuota,
    TotalQuota,
    /// The key at this position (1 total, 2 user) is not a sorted set.
    ForeignKey(i64),
}

pub fn acquire(
    conn: &mut Connection,
    user: &str,
    member: &str,
    lease_ms: u64,
    total_quota: u32,
    user_quota: u32,
) -> Result<(Acquired, i64), SourceError> {
    let user = user_key(user);
    let args = [
        member,
        &lease_ms.to_string(),
        &total_quota.to_string(),
        &user_quota.to_string(),
    ];
    let reply = eval(conn, ACQUIRE, &[TOTAL, &user], &args)?;
    let ints = integers(&reply);
    let (status, second) = match ints.as_slice() {
        [status, second] => (*status, *second),
        _ => return Err(SourceError(format!("unexpected reply {reply:?}"))),
    };
    Ok(match status {
        0 => (Acquired::Granted, second),
        1 => (Acquired::UserQuota, second),
        2 => (Acquired::TotalQuota, second),
        _ => (Acquired::ForeignKey(second), 0),
    })
}

/// Moves the expiry of `leases` (user, member) forward; how many keys were of the wrong type.
pub fn refresh(
    conn: &mut Connection,
    leases: &[(&str, String)],
    lease_ms: u64,
) -> Result<i64, SourceError> {
    let mut skipped = 0;
    for chunk in leases.chunks(500) {
        let users: Vec<String> = chunk.iter().map(|(u, _)| user_key(u)).collect();
        let mut keys = vec![TOTAL];
        keys.extend(users.iter().map(String::as_str));
        let lease = lease_ms.to_string();
        let mut args = vec![lease.as_str()];
        args.extend(chunk.iter().map(|(_, m)| m.as_str()));
        let reply = eval(conn, REFRESH, &keys, &args)?;
        skipped += integers(&reply).first().copied().unwrap_or(0);
    }
    Ok(skipped)
}

pub fn release(conn: &mut Connection, user: &str, member: &str) -> Result<(), SourceError> {
    eval(conn, RELEASE, &[TOTAL, &user_key(user)], &[member]).map(drop)
}

/// Publishes this node's `fields`; every live node's id and fields (this one's too). None when
/// the node set is of the wrong type.
#[allow(clippy::type_complexity)]
pub fn beat(
    conn: &mut Connection,
    node: &str,
    lease_ms: u64,
    fields: &[(&str, String)],
) -> Result<Option<Vec<(String, Vec<(String, String)>)>>, SourceError> {
    let own = node_key(node);
    let lease = lease_ms.to_string();
    let mut args = vec![node, lease.as_str()];
    for (f, v) in fields {
        args.push(f);
        args.push(v);
    }
    let reply = eval(conn, BEAT, &[NODES, &own], &args)?;
    let items = strings(&reply);
    if matches!(&reply, Value::Array(a) if a.len() == 1) && integers(&reply) == [-1] {
        return Ok(None);
    }
    let mut nodes = Vec::new();
    let mut it = items.into_iter();
    while let (Some(id), Some(n)) = (it.next(), it.next()) {
        let n: usize = n.parse().unwrap_or(0);
        let flat: Vec<String> = it.by_ref().take(n).collect();
        let pairs = flat
            .chunks(2)
            .filter_map(|c| match c {
                [f, v] => Some((f.clone(), v.clone())),
                _ => None,
            })
            .collect();
        nodes.push((id, pairs));
    }
    Ok(Some(nodes))
}

pub fn leave(conn: &mut Connection, node: &str) -> Result<(), SourceError> {
    eval(conn, LEAVE, &[NODES, &node_key(node)], &[node]).map(drop)
}

fn integers(v: &Value) -> Vec<i64> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::Int(n) => Some(*n),
                _ => None,
            })
            .collect(),
        Value::Int(n) => vec![*n],
        _ => Vec::new(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                Value::SimpleString(s) => Some(s.clone()),
                Value::Int(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}
