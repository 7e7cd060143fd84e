"""The exam as people and API clients meet it: the study list, upload and study pages, the image page, and the
study API, composed from the domain packages below it (cases.studies: ingestion, selectors, services; cases.reading:
reads and the viewer; cases.dicom: the result objects). Nothing below imports this package."""
