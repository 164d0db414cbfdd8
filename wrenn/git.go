package wrenn

// Git runs git inside a capsule; reached as Capsule.Git.
type Git struct{ cp *Capsule }
