// The client's pages and who may see them: anyone signed out sees the sign-in page.
import { useEffect, useState } from "react";
import { Link, Route, Switch, useLocation } from "wouter";
import { configureSession, onBusy } from "./api/client";
import { renew, signOut, storedUser, type SignedIn } from "./auth";
import { Exam } from "./pages/Exam";
import { Home } from "./pages/Home";
import { Report } from "./pages/Report";
import { SignIn } from "./pages/SignIn";

export function App() {
  const [user, setUser] = useState<SignedIn | null>(() => storedUser());
  const [busy, setBusy] = useState<number | null>(null);
  const [, navigate] = useLocation();
  useEffect(() => {
    onBusy(setBusy);
    configureSession(
      async () => {
        const current = storedUser();
        if (current === null) return false;
        const fresh = await renew(current);
        if (fresh !== null) setUser(fresh);
        return fresh !== null;
      },
      () => {
        signOut(null);
        setUser(null);
      },
    );
  }, []);
  return (
    <>
      <header className="top">
        <Link href="/" className="brand">
          TOEFL iBT practice
        </Link>
        {user !== null ? (
          <span className="who">
            Signed in as {user.username}{" "}
            <button
              type="button"
              onClick={() => {
                signOut(user);
                setUser(null);
                navigate("/");
              }}
            >
              Sign out
            </button>
          </span>
        ) : null}
      </header>
      {busy !== null ? (
        <p className="busy" role="status">
          The service is busy; retrying in {busy} s.
        </p>
      ) : null}
      <main>
        {user === null ? (
          <SignIn onSignedIn={setUser} />
        ) : (
          <Switch>
            <Route path="/exam/:sessionId">{(params) => <Exam sessionId={params.sessionId} />}</Route>
            <Route path="/report/:sessionId">{(params) => <Report sessionId={params.sessionId} />}</Route>
            <Route>
              <Home user={user} />
            </Route>
          </Switch>
        )}
      </main>
    </>
  );
}
