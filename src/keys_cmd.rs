//! `syncstorm keys --jwt-secret S`: the `anon` and `service_role` API keys for a project's JWT
//! secret, as env-file lines (`ANON_KEY=…`, `SERVICE_ROLE_KEY=…`), so a `.env` made for
//! docker compose has keys that agree with its secret.

use crate::cli::exit;

/// Supabase (GoTrue, Realtime) wants at least this many characters of HS256 secret.
pub const MIN_SECRET_LEN: usize = 32;

/// Options of `syncstorm keys`.
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    /// The project's JWT secret (`JWT_SECRET` in `.env`), at least 32 characters.
    #[arg(long)]
    pub jwt_secret: String,
}

/// Prints the two key lines; returns the process exit code.
pub fn run(args: &KeysArgs) -> i32 {
    match key_lines(&args.jwt_secret, chrono::Utc::now().timestamp()) {
        Ok(lines) => {
            print!("{lines}");
            exit::OK
        }
        Err(msg) => {
            eprintln!("syncstorm keys: {msg}");
            exit::BAD_INPUT
        }
    }
}

/// `ANON_KEY=…\nSERVICE_ROLE_KEY=…\n`, both signed with `secret` and issued at `now` (valid ten
/// years, like Supabase's own keys).
pub fn key_lines(secret: &str, now: i64) -> Result<String, String> {
    if secret.chars().count() < MIN_SECRET_LEN {
        return Err(format!(
            "the JWT secret must be at least {MIN_SECRET_LEN} characters (Supabase's minimum); \
             make one with e.g. `openssl rand -base64 48`"
        ));
    }
    let anon = syncstorm_wire::jwt::api_key(secret, "anon", now);
    let service = syncstorm_wire::jwt::api_key(secret, "service_role", now);
    Ok(format!("ANON_KEY={anon}\nSERVICE_ROLE_KEY={service}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_verify_with_the_secret_and_carry_their_roles() {
        let secret = "a-test-secret-that-is-long-enough-0123456789";
        let now = chrono::Utc::now().timestamp();
        let lines = key_lines(secret, now).unwrap();
        let mut roles = Vec::new();
        for line in lines.lines() {
            let (name, token) = line.split_once('=').unwrap();
            let claims = syncstorm_wire::jwt::decode(secret, token).unwrap();
            assert!(claims.exp > now + 365 * 86_400);
            roles.push((name.to_string(), claims.role));
        }
        assert_eq!(
            roles,
            [
                ("ANON_KEY".to_string(), "anon".to_string()),
                ("SERVICE_ROLE_KEY".to_string(), "service_role".to_string())
            ]
        );
        // A different secret does not verify them.
        let token = lines.lines().next().unwrap().split_once('=').unwrap().1;
        assert!(
            syncstorm_wire::jwt::decode("another-secret-of-enough-length-00000", token).is_err()
        );
    }

    #[test]
    fn short_secret_gets_one_sentence() {
        let msg = key_lines("short", 0).unwrap_err();
        assert!(msg.contains("at least 32 characters"), "{msg}");
    }
}
