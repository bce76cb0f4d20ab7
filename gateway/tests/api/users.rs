//! Users: profiles, admin management, deletion, paging.
