package device

// identityChanged tells that user's phone has a new identity key: the
// safety number with them changed (a reinstall, or someone else).
func (d *Device) identityChanged(user string) {
	d.log.Info("identity key changed", "user", user)
	d.emit(Event{Kind: IdentityChanged, Chat: user})
}
