/** Whether a user's email address is verified, as a badge. */
export function VerifiedBadge({ verified }: { verified: boolean }) {
  return verified ? (
    <span className="badge badge-verified">Verified</span>
  ) : (
    <span className="badge badge-unverified">Not verified</span>
  );
}
