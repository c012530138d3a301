// A student's accommodations as their teacher sets them: extra time on every part (IMS additional-testing-time) and
// a break between sections, with the reason. Tests already started keep the clock they started with.
import { useEffect, useState, type SyntheticEvent } from "react";
import { api, call } from "../api/client";

const MULTIPLIERS = [1, 1.25, 1.5, 2];

export function AccommodationForm({ studentId, name }: { studentId: string; name: string }) {
  const [multiplier, setMultiplier] = useState("1");
  const [breakMinutes, setBreakMinutes] = useState("0");
  const [reason, setReason] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  // The fields wait for the student's current accommodations: filled in after a teacher's choice, the reply would
  // silently replace it (the roster test once saved standard time after choosing 1.5 times).
  const [loaded, setLoaded] = useState(false);
  useEffect(() => {
    setLoaded(false);
    call(() => api.GET("/api/students/{student_id}/accommodation", { params: { path: { student_id: studentId } } }))
      .then((current) => {
        setMultiplier(String(current.extraTimeMultiplier || 1));
        setBreakMinutes(String(Math.round((current.breakSeconds ?? 0) / 60)));
        setReason(current.reason ?? "");
        setLoaded(true);
      })
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
      });
  }, [studentId]);
  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    setMessage(null);
    setError(null);
    const accommodation = {
      extraTimeMultiplier: Number(multiplier),
      breakSeconds: Number(breakMinutes) * 60,
      reason,
    };
    call(() =>
      api.PUT("/api/students/{student_id}/accommodation", {
        params: { path: { student_id: studentId } },
        body: accommodation,
      }),
    )
      .then((saved) => {
        setMessage(
          `Saved: ${describe(saved.extraTimeMultiplier ?? 1)} for tests ${name} starts from now on` +
            ` (a test already started keeps its clock).`,
        );
      })
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
      });
  };
  const options = MULTIPLIERS.includes(Number(multiplier)) ? MULTIPLIERS : [...MULTIPLIERS, Number(multiplier)];
  return (
    <form className="card" aria-label={`Accommodations of ${name}`} aria-busy={!loaded} onSubmit={submit}>
      <h2>Accommodations of {name}</h2>
      <fieldset disabled={!loaded}>
        <label>
          Extra time{" "}
          <select
            value={multiplier}
            onChange={(event) => {
              setMultiplier(event.target.value);
            }}
          >
            {options.map((value) => (
              <option key={value} value={String(value)}>
                {describe(value)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Break between sections, in minutes (0 to 30){" "}
          <input
            type="number"
            min={0}
            max={30}
            value={breakMinutes}
            onChange={(event) => {
              setBreakMinutes(event.target.value);
            }}
          />
        </label>
        <label>
          Reason (required for anything but standard time){" "}
          <input
            value={reason}
            onChange={(event) => {
              setReason(event.target.value);
            }}
          />
        </label>
        <button type="submit">Save accommodations</button>
      </fieldset>
      {error !== null ? <p role="alert">{error}</p> : null}
      {message !== null ? <p role="status">{message}</p> : null}
    </form>
  );
}

function describe(multiplier: number): string {
  return multiplier === 1 ? "standard time" : `${multiplier} times the standard time`;
}
