# Patients, studies and images are deliberately not in the Django admin: the admin role manages users and
# models and has no access to patient images (accounts.roles.MATRIX). Clinical users work in the pages.
