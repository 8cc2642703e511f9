//! `?platform=` on `POST /containers/create` (`docker run --platform`): berth runs
//! linux/amd64 images only, so anything else is refused with a clear 400 before a container
//! exists (dockerd would answer 404 and make the CLI try to pull the other platform).
use crate::error::ApiError;
use crate::models::ContainerCreateBody;

/// True for `linux`, `linux/amd64` (also `x86_64`), with an optional `/v1` variant.
pub fn supported(platform: &str) -> bool {
    let p = platform.to_ascii_lowercase();
    let mut parts = p.split('/');
    let os = parts.next().unwrap_or("");
    let arch = parts.next().unwrap_or("amd64");
    let variant = parts.next().unwrap_or("");
    os == "linux"
        && matches!(arch, "amd64" | "x86_64" | "x86-64")
        && matches!(variant, "" | "v1")
        && parts.next().is_none()
}

pub fn check(platform: Option<&str>, body: &ContainerCreateBody) -> Result<(), ApiError> {
    match platform.filter(|p| !p.is_empty()) {
        Some(p) if !supported(p) => Err(ApiError::invalid(format!(
            "image with reference {} was found but does not match the specified platform: wanted {p}, actual: linux/amd64 (berth runs linux/amd64 only)",
            body.image.as_deref().unwrap_or("")
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        assert!(supported("linux/amd64") && supported("linux") && supported("Linux/AMD64"));
        assert!(!supported("linux/arm64") && !supported("windows/amd64") && !supported(""));
        assert!(!supported("linux/amd64/v2/x"));
        let b = ContainerCreateBody {
            image: Some("busybox".into()),
            ..Default::default()
        };
        assert!(check(Some("linux/amd64"), &b).is_ok() && check(None, &b).is_ok());
        let e = check(Some("linux/arm64"), &b).unwrap_err();
        assert!(e.message.contains("wanted linux/arm64"), "{}", e.message);
    }
}
