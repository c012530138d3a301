// The module's clock is the server's: remainingSeconds from each reply sets the local deadline again.
import { useEffect, useState } from "react";

export function useCountdown(deadlineMs: number): number {
  // The tick only redraws; the time is read at each drawing, so a deadline set anew (a reply, a resume) shows the
  // server's seconds at once, not one more counted from the tick before it.
  const [, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => {
      setTick((tick) => tick + 1);
    }, 250);
    return () => {
      clearInterval(timer);
    };
  }, []);
  return Math.max(0, Math.ceil((deadlineMs - Date.now()) / 1000));
}

export function formatClock(seconds: number): string {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, "0")}`;
}

/** The warning a student sees at 5 minutes and 1 minute left. */
export function clockWarning(seconds: number): string | null {
  if (seconds <= 60) return "1 minute left in this part.";
  if (seconds <= 300) return "5 minutes left in this part.";
  return null;
}
