import { useState, type SyntheticEvent } from "react";
import { signIn, type SignedIn } from "../auth";

export function SignIn({ onSignedIn }: { onSignedIn: (user: SignedIn) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    setPending(true);
    setError(null);
    signIn(username, password)
      .then(onSignedIn)
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : "Signing in failed.");
      })
      .finally(() => {
        setPending(false);
      });
  };
  return (
    <form className="card signin" onSubmit={submit}>
      <h1>Sign in</h1>
      <label>
        Username
        <input autoComplete="username" value={username} onChange={(e) => { setUsername(e.target.value); }} required />
      </label>
      <label>
        Password
        <input
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => {
            setPassword(e.target.value);
          }}
          required
        />
      </label>
      {error !== null ? <p role="alert">{error}</p> : null}
      <button type="submit" disabled={pending}>
        {pending ? "Signing in…" : "Sign in"}
      </button>
    </form>
  );
}
