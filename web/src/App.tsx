// The client's pages and who may see them: anyone signed out sees the sign-in page.
import { useEffect, useState } from "react";
import { Link, Route, Switch, useLocation } from "wouter";
import { onBusy, setAccessToken } from "./api/client";
import { signOut, storedUser, type SignedIn } from "./auth";
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
    setAccessToken(user?.accessToken ?? null, () => {
      signOut();
      setUser(null);
    });
  }, [user]);
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
                signOut();
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
