from django import forms
from django.conf import settings


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": ".dcm,.dicom,.png,.jpg,.jpeg,application/dicom"})
        )
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data]
        files = [f for f in files if f]
        if not files:
            raise forms.ValidationError("Choose at least one file.")
        if len(files) > settings.MAMMO_MAX_FILES_PER_UPLOAD:
            raise forms.ValidationError(f"At most {settings.MAMMO_MAX_FILES_PER_UPLOAD} files at once.")
        return files


class StudyUploadForm(forms.Form):
    files = MultipleFileField(help_text="DICOM, PNG or JPEG mammograms of one exam.")
    patient_id = forms.CharField(
        max_length=64, required=False, help_text="Required for PNG/JPEG; taken from the DICOM when empty."
    )
    patient_name = forms.CharField(max_length=200, required=False)
    patient_birth_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    accession_number = forms.CharField(max_length=64, required=False)
    study_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    description = forms.CharField(max_length=200, required=False)
    laterality = forms.ChoiceField(
        choices=[("", "From the file"), ("L", "Left"), ("R", "Right")],
        required=False,
        help_text="For PNG/JPEG files (DICOMs carry their own).",
    )
    view = forms.ChoiceField(
        choices=[("", "From the file"), ("CC", "CC"), ("MLO", "MLO")],
        required=False,
        help_text="For PNG/JPEG files; a name like 'L_CC.png' also works.",
    )


class AddImagesForm(forms.Form):
    files = MultipleFileField()
    patient_id = forms.CharField(
        max_length=64,
        required=False,
        label="Patient ID (PNG/JPEG)",
        help_text="PNG and JPEG files carry no patient: type this study's patient ID to confirm they are hers.",
    )
    laterality = StudyUploadForm.base_fields["laterality"]
    view = StudyUploadForm.base_fields["view"]
