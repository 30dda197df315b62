"""Three reports of the Azerbaijan Airlines crash in words the seed story already knows:
no sentence is new, so only their number on one day (a surge) can make a development."""

SURGE_REPORTS = [
    (
        "Plane crash near Aktau: Azerbaijan Airlines Embraer investigation",
        "The Azerbaijan Airlines Embraer 190 crashed near Aktau in Kazakhstan, killing 38 people. "
        "The plane was flying from Baku to Grozny.",
    ),
    (
        "Russia shot down the Azerbaijan Airlines plane near Aktau",
        "Russian air defence shot down the Azerbaijan Airlines Embraer that crashed near Aktau, "
        "killing 38 people, on its way from Baku to Grozny.",
    ),
    (
        "Azerbaijan Airlines crash near Aktau caused by Russian air defence",
        "The Azerbaijan Airlines Embraer that crashed near Aktau was hit by Russian air defence; "
        "38 people were killed on the flight from Baku to Grozny.",
    ),
]
