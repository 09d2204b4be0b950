// What the gateway's page uses of the Firebase JS SDK: email and password sign-in, the ID
// token, sign-out. No popup or redirect resolver: nothing loads from Google but the sign-in.
export { initializeApp } from "firebase/app";
export {
  browserLocalPersistence,
  connectAuthEmulator,
  initializeAuth,
  onIdTokenChanged,
  signInWithEmailAndPassword,
  signOut,
} from "firebase/auth";
