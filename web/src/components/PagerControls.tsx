import { forwardRef } from "react";
import { Button } from "./Button";

interface PagerControlsProps {
  page: number;
  isFirst: boolean;
  hasNext: boolean;
  busy: boolean;
  onFirst: () => void;
  onPrevious: () => void;
  onNext: () => void;
}

/**
 * "First page", "Previous page", "Next page" (only the ones that lead
 * somewhere) and which page this is. The page label takes focus after a
 * page change, since the button pressed may be gone.
 */
export const PagerControls = forwardRef<HTMLParagraphElement, PagerControlsProps>(function PagerControls(
  { page, isFirst, hasNext, busy, onFirst, onPrevious, onNext },
  ref,
) {
  return (
    <div className="pager">
      <p ref={ref} tabIndex={-1} className="pager-page">
        Page {page}
      </p>
      <div className="actions">
        {!isFirst ? (
          <>
            <Button busy={busy} onClick={onFirst}>
              First page
            </Button>
            {page > 2 ? (
              <Button busy={busy} onClick={onPrevious}>
                Previous page
              </Button>
            ) : null}
          </>
        ) : null}
        {hasNext ? (
          <Button busy={busy} onClick={onNext}>
            Next page
          </Button>
        ) : null}
      </div>
    </div>
  );
});
