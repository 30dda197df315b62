"""The story desk: a small server-rendered site and JSON API over the service's database
(`storywatch web`, and started by `storywatch run`)."""
