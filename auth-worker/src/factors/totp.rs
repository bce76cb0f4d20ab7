//! Authenticator apps (TOTP, RFC 6238): SHA-1, 6 digits, 30-second steps,
//! as every app understands. A code is accepted for the current step and
//! one step either side (clocks drift), and [`matching_step`] says which
//! step it matched: the caller stores the last accepted step and refuses
//! any step not after it, so a code is never taken twice.

use qrcode::{QrCode, render::svg};
use rand::RngCore;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Steps accepted either side of the current one.
pub const SKEW_STEPS: i64 = 1;
/// Secret bytes: 160 bits, as RFC 4226 recommends.
const SECRET_LEN: usize = 20;

/// A new secret and how an app is told of it.
pub struct Enrolment {
    pub secret: Vec<u8>,
    /// The secret in base32, for typing in.
    pub base32: String,
    /// `otpauth://totp/<issuer>:<account>?secret=…&issuer=…`.
    pub uri: String,
    /// The QR code of `uri`, an SVG document.
    pub qr_svg: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret, its base32, the URI and the QR code all hold it.
        f.write_str("Enrolment([REDACTED])")
    }
}

fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> anyhow::Result<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        0,
        STEP_SECS,
        secret,
        Some(issuer.to_owned()),
        account.to_owned(),
    )
    .map_err(|e| anyhow::anyhow!("a TOTP secret: {e}"))
}

/// A random secret for `account` (the user's email) at `issuer`.
pub fn enrol(issuer: &str, account: &str) -> anyhow::Result<Enrolment> {
    let mut secret = vec![0u8; SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    // `otpauth` URIs put issuer and account in the label, where a colon
    // separates them: neither may hold one.
    let issuer = issuer.replace(':', " ");
    let account = account.replace(':', " ");
    let totp = totp(secret.clone(), &issuer, &account)?;
    let uri = totp.get_url();
    let qr_svg = QrCode::new(uri.as_bytes())
        .map_err(|e| anyhow::anyhow!("a QR code: {e}"))?
        .render::<svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    Ok(Enrolment {
        base32: totp.get_secret_base32(),
        secret,
        uri,
        qr_svg,
    })
}

/// The code for `secret` at time step `step`.
pub fn code_at(secret: &[u8], step: i64) -> anyhow::Result<String> {
    let totp = totp(secret.to_vec(), "x", "x")?;
    let step = u64::try_from(step).map_err(|_| anyhow::anyhow!("a negative time step"))?;
    Ok(totp.generate(step * STEP_SECS))
}

/// The time step of Unix time `now`.
pub fn step_of(now: i64) -> i64 {
    now.div_euclid(STEP_SECS as i64)
}

/// The step, within [`SKEW_STEPS`] of `now`'s, whose code `code` is;
/// `None` for a code that matches none. Spaces in the code are ignored;
/// every candidate is compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> anyhow::Result<Option<i64>> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if !shared::mfa::is_totp_code(&code) {
        return Ok(None);
    }
    let current = step_of(now);
    let mut found = None;
    for step in current - SKEW_STEPS..=current + SKEW_STEPS {
        let expected = code_at(secret, step)?;
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 secret "12345678901234567890".
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_are_those_of_rfc_6238() {
        // Time 59 is step 1: 94287082 in 8 digits, 287082 in 6.
        assert_eq!(code_at(RFC_SECRET, 1).unwrap(), "287082");
        // Time 1111111109 is step 37037036: 07081804.
        assert_eq!(code_at(RFC_SECRET, 37_037_036).unwrap(), "081804");
    }

    #[test]
    fn a_code_matches_its_step_and_one_either_side_only() {
        let now = 1_111_111_109;
        let step = step_of(now);
        for offset in -1..=1 {
            let code = code_at(RFC_SECRET, step + offset).unwrap();
            assert_eq!(
                matching_step(RFC_SECRET, &code, now).unwrap(),
                Some(step + offset)
            );
        }
        for offset in [-3, -2, 2, 3] {
            let code = code_at(RFC_SECRET, step + offset).unwrap();
            let matched = matching_step(RFC_SECRET, &code, now).unwrap();
            // Another step's code may collide by chance; never its own.
            assert_ne!(matched, Some(step + offset));
        }
        let spaced = code_at(RFC_SECRET, step).unwrap();
        let spaced = format!("{} {}", &spaced[..3], &spaced[3..]);
        assert_eq!(matching_step(RFC_SECRET, &spaced, now).unwrap(), Some(step));
        for bad in ["", "abcdef", "12345", "1234567"] {
            assert_eq!(matching_step(RFC_SECRET, bad, now).unwrap(), None);
        }
    }

    #[test]
    fn an_enrolment_names_issuer_and_account_and_draws_its_uri() {
        let e = enrol("natsauth", "ada@example.com").unwrap();
        assert_eq!(e.secret.len(), SECRET_LEN);
        assert!(
            e.uri
                .starts_with("otpauth://totp/natsauth:ada%40example.com?"),
            "{}",
            e.uri
        );
        assert!(e.uri.contains(&format!("secret={}", e.base32)));
        assert!(e.qr_svg.starts_with("<?xml") && e.qr_svg.contains("<svg"));
        assert_ne!(enrol("natsauth", "a@b.co").unwrap().secret, e.secret);
    }
}
