"""Stories: the user's corpus turned into the stories storywatch tracks.

`corpus` (documents, story folders, dates -> stories), `cleaning` (furniture, captions,
datelines), `grouping` and `term_space` (which passages of loose files tell one story),
`rules` (the hand edits of stories.toml). Pure: no I/O, no clock, no database.
"""
