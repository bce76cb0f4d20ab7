//! Sessions: refresh rotation, reuse detection, logout, password change, throttling.
