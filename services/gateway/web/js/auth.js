// Who the page calls the API as. On the embedded default nobody signs in; with Firebase auth
// the bundled Firebase SDK (vendor/, built from clients/web) signs in with email and password
// and keeps the ID token fresh.

export async function openSession(config) {
  if (config.auth !== "firebase") {
    return { token: async () => null, watch: (onUser) => onUser({ name: null }) };
  }
  const { api_key: apiKey, auth_domain: authDomain, project_id: projectId } = config.firebase;
  if (!apiKey) {
    throw new Error(
      "This gateway signs in with Firebase but was given no web API key " +
        "(GATEWAY_FIREBASE_API_KEY): the page cannot sign anyone in. The API works as before.",
    );
  }
  const sdk = await import("../vendor/firebase-auth.js");
  const app = sdk.initializeApp({ apiKey, authDomain, projectId });
  const auth = sdk.initializeAuth(app, { persistence: sdk.browserLocalPersistence });
  if (config.firebase.emulator_url) {
    sdk.connectAuthEmulator(auth, config.firebase.emulator_url, { disableWarnings: true });
  }
  return {
    token: async () => (auth.currentUser ? auth.currentUser.getIdToken() : null),
    watch: (onUser) =>
      sdk.onIdTokenChanged(auth, (user) => onUser(user && { name: user.email || user.uid })),
    signIn: (email, password) => sdk.signInWithEmailAndPassword(auth, email, password),
    signOut: () => sdk.signOut(auth),
  };
}

// Firebase's error codes, in words.
export function signInError(error) {
  const code = String(error?.code || "");
  if (/invalid-credential|wrong-password|user-not-found|invalid-email/.test(code)) {
    return "The email or password is not right.";
  }
  if (code.includes("too-many-requests")) return "Too many attempts: wait a little and try again.";
  if (code.includes("network-request-failed")) return "The sign-in service could not be reached.";
  return `Sign-in failed (${code || "unknown error"}).`;
}
