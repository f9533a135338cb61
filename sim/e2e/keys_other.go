//go:build !js

package e2e

// baseTable has createKeyPair use edwardsPublic (keys_js.go says where not).
const baseTable = true
