// The signed-in user, kept for this browser tab (sessionStorage) so a reload does not sign the student out; the
// access token is renewed with the refresh token before it lapses, so the exam never asks for the password again.
import { api, call, setSession, type Role } from "./api/client";

export interface SignedIn {
  accessToken: string;
  refreshToken: string;
  // Date.now() after which the access token is renewed before use.
  renewAfter: number;
  userId: string;
  role: Role;
  username: string;
}

const KEY = "toefl.auth";
// Renewed this long before it lapses: a request never leaves with a token about to expire.
const RENEW_MARGIN_MS = 30_000;

interface TokenReply {
  accessToken?: string | null;
  refreshToken?: string | null;
  expiresIn?: number | null;
  userId?: string | null;
  role?: Role | null;
}

function remember(reply: TokenReply, username: string): SignedIn {
  const lifetimeMs = (reply.expiresIn ?? 0) * 1000;
  const user: SignedIn = {
    accessToken: reply.accessToken ?? "",
    refreshToken: reply.refreshToken ?? "",
    renewAfter: Date.now() + Math.max(lifetimeMs - RENEW_MARGIN_MS, lifetimeMs / 2),
    userId: reply.userId ?? "",
    role: reply.role ?? "ROLE_UNSPECIFIED",
    username,
  };
  sessionStorage.setItem(KEY, JSON.stringify(user));
  setSession(user);
  return user;
}

export function storedUser(): SignedIn | null {
  const raw = sessionStorage.getItem(KEY);
  if (raw === null) return null;
  const user = JSON.parse(raw) as SignedIn;
  setSession(user);
  return user;
}

export async function signIn(username: string, password: string): Promise<SignedIn> {
  const reply = await call(() => api.POST("/api/auth/token", { body: { username, password } }));
  return remember(reply, username);
}

let renewing: Promise<SignedIn | null> | null = null;

/** A fresh access token from the refresh token (single use: one renewal at a time); null when it no longer works. */
export function renew(user: SignedIn): Promise<SignedIn | null> {
  renewing ??= (async () => {
    try {
      const reply = await call(
        () => api.POST("/api/auth/token:refresh", { body: { refreshToken: user.refreshToken } }),
        { renew: false },
      );
      return remember(reply, user.username);
    } catch {
      return null;
    } finally {
      renewing = null;
    }
  })();
  return renewing;
}

export function signOut(user: SignedIn | null): void {
  sessionStorage.removeItem(KEY);
  setSession(null);
  if (user !== null && user.refreshToken !== "") {
    // Ends the sign-in on the server too; nothing to wait for.
    void api.POST("/api/auth/signOut", { body: { refreshToken: user.refreshToken } }).catch(() => undefined);
  }
}
