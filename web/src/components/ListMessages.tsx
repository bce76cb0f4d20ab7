import { Button } from "./Button";
import { ErrorAlert, StatusMessage } from "./StatusMessage";

/**
 * Above a list: what the last action did or why it failed, and "Try again"
 * when the list itself could not be loaded.
 */
export function ListMessages({
  status,
  alert,
  onRetry,
}: {
  status: string | null;
  alert: string | null;
  onRetry: (() => void) | null;
}) {
  return (
    <div className="messages">
      <StatusMessage message={status} />
      <ErrorAlert message={alert} />
      {onRetry ? (
        <Button onClick={onRetry} className="retry">
          Try again
        </Button>
      ) : null}
    </div>
  );
}
