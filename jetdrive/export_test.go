package jetdrive

// The client's limits, for the tests of package jetdrive_test.
const (
	MaxProviders       = maxProviders
	MaxUnknownChannels = maxUnknownChannels
)
